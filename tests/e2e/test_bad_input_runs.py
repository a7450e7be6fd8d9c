"""Bad input through the real command: a non-zero exit status and one paragraph on stderr, no traceback wall.
What each message says, for every kind of bad input: ``tests/unit/test_bad_input.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_lossforge

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("overrides", "status", "fragment"),
    [
        (["loss=focall"], 2, "Did you mean 'focal'"),
        (["loss=focal", "dataset=regression_outliers"], 1, "Losses that fit"),
        (["loss=focal", "loss.gama=2"], 2, "Did you mean 'gamma'"),  # answered before Hydra's detour
        (["trainer.max_epochs=0"], 1, "trainer.max_epochs must be >= 1"),
        (["logger.tracking_uri=http://127.0.0.1:9"], 1, "did not answer"),
    ],
)
def test_the_command_exits_non_zero_with_one_paragraph(
    tmp_path: Path, overrides: list[str], status: int, fragment: str
) -> None:
    result = run_lossforge(tmp_path, *overrides)
    assert result.returncode == status
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert "lossforge: error:" in result.stderr
