"""Plugins through the real command line: ``lossforge list`` reports a broken one and exits 1, a plugin's preset
composes, and the example plugin (plugins/lossforge-extras) trains end to end. In-process plugin tests:
``tests/unit/test_plugins.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import (
    EXTRAS,
    EXTRAS_VERSION,
    QUICK_RUN,
    Site,
    default_store_runs,
    install_good,
    needs_extras,
    run_lossforge,
    run_python,
)

pytestmark = pytest.mark.slow

LIST_COMMAND = ("-c", "from lossforge.cli import main; main()", "list")  # what the `lossforge` script runs


def test_lossforge_list_reports_a_broken_plugin_and_exits_1(site: Site, tmp_path: Path) -> None:
    install_good(site)
    site.install(
        "lf-test-broken",
        package="lf_test_broken",
        files={"__init__.py": "raise RuntimeError('the plugin is broken')"},
        entry_points={"lossforge.losses": {"broken_loss": "lf_test_broken:Loss"}},
    )
    search_path = os.pathsep.join(filter(None, [str(site.root), os.environ.get("PYTHONPATH")]))
    result = run_python(tmp_path, *LIST_COMMAND, env={"PYTHONPATH": search_path}, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    out = result.stdout
    assert "FAILED  lf-test-broken==0.1.0" in out and "'broken_loss = lf_test_broken:Loss'" in out
    assert "RuntimeError: the plugin is broken" in out
    assert any(line.split()[:1] == ["scaled_l1"] and "lf-test-good==0.1.0" in line for line in out.splitlines())
    assert any(line.split()[:1] == ["cross_entropy"] and "FAILED" not in line for line in out.splitlines())


@needs_extras
def test_the_command_line_composes_a_plugin_preset(tmp_path: Path) -> None:
    # From outside the checkout, where an editable install hides `hydra_plugins` from Hydra's own scan.
    result = run_lossforge(tmp_path, "loss=poly1_imagenet", "--cfg", "job")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "name: poly1_cross_entropy" in result.stdout and "epsilon: 2.0" in result.stdout


@needs_extras
@pytest.mark.usefixtures("default_store")
def test_example_plugin_trains_end_to_end_and_records_its_provider(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "loss=poly1_cross_entropy", *QUICK_RUN)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.params["loss.name"] == "poly1_cross_entropy" and run.data.params["loss.epsilon"] == "1.0"
    assert run.data.tags["loss.provider"] == f"{EXTRAS}=={EXTRAS_VERSION}"

    listed = run_python(tmp_path, *LIST_COMMAND)
    line = next(line for line in listed.stdout.splitlines() if line.split()[:1] == ["poly1_cross_entropy"])
    assert "multiclass" in line and f"{EXTRAS}=={EXTRAS_VERSION}" in line and "FAILED" not in line
