"""What a real run prints: one line per epoch and the final block; a sweep, one line per run; no Lightning chatter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import run_lossforge

pytestmark = pytest.mark.slow

EPOCH_LINE = re.compile(r"^epoch +\d+/\d+  train/loss \S+  val/loss \S+  val/f1_macro \S+  \(\d+\.\d s\)$", re.M)
SUMMARY_LINE = re.compile(r"^cross_entropy-digits-seed\d: test/accuracy \S+ .*  \(run [0-9a-f]{32}\)$", re.M)
CHATTER = ("GPU available", "TPU available", "Tip", "LeafSpec", "Trainer.fit", "Deprecat")


def test_a_run_prints_a_line_per_epoch_and_the_final_block(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "trainer.max_epochs=2", "model.hidden=[8]")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert len(EPOCH_LINE.findall(result.stdout)) == 2, output
    assert [word for word in CHATTER if word in output] == [], output
    assert "Test metrics:" in result.stdout and "MLflow run: " in result.stdout and "Dashboard: " in result.stdout


def test_a_sweep_prints_one_line_per_run(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "-m", "trainer.max_epochs=1", "model.hidden=[8]", "seed=0,1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert len(SUMMARY_LINE.findall(result.stdout)) == 2, output
    assert not EPOCH_LINE.search(result.stdout) and "Test metrics:" not in result.stdout, output
    assert [word for word in CHATTER if word in output] == [], output
