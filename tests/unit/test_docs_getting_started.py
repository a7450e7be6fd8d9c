"""The getting-started page cannot go stale: its first-comparison commands (the fenced block marked
`<!-- tested -->` in docs/getting-started.md) are run here exactly as written, in a fresh directory, with the
test environment's `bin/` first on `PATH` — as a reader with `.venv` activated runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LEAKY_VARIABLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"


def tested_commands() -> list[str]:
    """The lines of every fenced block that follows a `<!-- tested -->` marker."""
    blocks = re.findall(r"<!-- tested -->\n```bash\n(.*?)```", PAGE.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_page_marks_the_commands_of_a_first_comparison() -> None:
    commands = tested_commands()
    assert commands[0] == "lossforge list"
    assert any(c.startswith("python -m lossforge -m loss=") for c in commands), "a sweep over losses"
    assert commands[-1].startswith("lossforge compare")


@pytest.mark.slow
def test_the_getting_started_commands_run_as_written(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES and k != "VIRTUAL_ENV"}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    outputs = {}
    for command in tested_commands():
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        outputs[command] = result.stdout
    listing, run, sweep, comparison = outputs.values()
    assert "cross_entropy" in listing and "focal" in listing
    assert "Test metrics:" in run and "MLflow run:" in run  # what the page shows a run printing
    assert "focal" in sweep and "cross_entropy" in sweep
    assert "focal" in comparison and "baseline" in comparison
    assert (tmp_path / "outputs" / "mlflow.db").exists()  # the runs landed in the directory they started from
