"""The public Python API (``lossforge.train``, ``lossforge.benchmark``, ``lossforge.compare``): importing it
stays free of torch, each function returns an object, and bad input is an exception that teaches, not an
exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import QUICK_RUN, child_env

import lossforge
from lossforge.evaluation.compare import ComparisonError


def test_import_lossforge_and_reaching_the_api_import_no_torch() -> None:
    code = (
        "import sys, lossforge; lossforge.train, lossforge.benchmark, lossforge.compare, lossforge.TrainResult; "
        "print(sorted(name for name in ('torch', 'lightning', 'mlflow') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        lossforge.trian  # noqa: B018


def test_bad_input_raises_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Did you mean 'tiny'"):
        lossforge.benchmark(["cross_entropy"], budget="tiyn", base_dir=tmp_path)
    with pytest.raises(ValueError, match=r"unknown loss 'focall'\. Did you mean 'focal'"):
        lossforge.train(["loss=focall"], base_dir=tmp_path)
    with pytest.raises(ComparisonError, match=r"no MLflow store at .* Run an experiment first"):
        lossforge.compare(base_dir=tmp_path)  # where nothing ran, a comparison says so and creates no store


def test_train_returns_its_run_and_a_config_trains_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A result names its MLflow run; its config, changed by a dotted override, trains a second run."""
    first = lossforge.train([*QUICK_RUN, "verbose=false", "dataset=regression_outliers", "loss=l1"], base_dir=tmp_path)
    assert first.run_id is not None and "test/mae" in first.metrics
    assert first.tracking_uri == f"sqlite:///{tmp_path}/outputs/mlflow.db" and first.output_dir.is_dir()
    assert f"(run {first.run_id})" in capsys.readouterr().out  # the summary line, as the command prints it
    second = lossforge.train(["loss.name=l2"], config=first.config, base_dir=tmp_path, summary=False)
    assert second.run_id not in (None, first.run_id) and second.config.loss.name == "l2"
    assert "(run " not in capsys.readouterr().out
