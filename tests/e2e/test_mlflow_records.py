"""What a reviewer expects a run to leave in MLflow besides metrics: its three dataset inputs (digests that tell
whether two runs saw the same data), the machine's use (``logger.system_metrics``) and a loadable model
(``logger.log_model``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from helpers import QUICK_RUN, compose_config, default_store_runs
from mlflow import MlflowClient
from mlflow.entities import Run

from lossforge.tracking import DEFAULT_STORE
from lossforge.training.build import ConfigError, build
from lossforge.training.run import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]
HAS_PSUTIL = importlib.util.find_spec("psutil") is not None


def only_run(base_dir: Path) -> Run:
    _, runs = default_store_runs(base_dir)
    (run,) = runs
    return run


def datasets_by_context(run: Run) -> dict[str, tuple[str, str]]:
    """``{context: (name, digest)}`` of the run's dataset inputs."""
    assert run.inputs is not None, "the run records no inputs"
    recorded = {}
    for dataset_input in run.inputs.dataset_inputs:
        (context,) = [tag.value for tag in dataset_input.tags if tag.key == "mlflow.data.context"]
        recorded[context] = (dataset_input.dataset.name, dataset_input.dataset.digest)
    return recorded


def test_a_run_records_its_three_splits_with_digests_that_tell_data_apart(tmp_path: Path) -> None:
    digests = {}
    # docs/decisions.md §1: the run seed never changes the data; the split seed does
    for directory, overrides in (("first", ["seed=0"]), ("same", ["seed=1"]), ("other", ["dataset.split_seed=1"])):
        base_dir = tmp_path / directory
        (base_dir / "outputs").mkdir(parents=True)
        train(compose_config(*QUICK_RUN, *overrides), base_dir=base_dir, summary=False)
        run = only_run(base_dir)
        recorded = datasets_by_context(run)
        assert sorted(recorded) == ["testing", "training", "validation"]
        assert {name for name, _ in recorded.values()} == {"digits"}
        assert len({digest for _, digest in recorded.values()}) == 3, "each split has its own digest"
        assert run.inputs is not None
        source = run.inputs.dataset_inputs[0].dataset.source
        assert "val_fraction" in source and "split_seed" in source, source  # the config that built it, its split seed
        digests[directory] = recorded
    assert digests["first"] == digests["same"]
    for context in ("training", "validation", "testing"):
        assert digests["first"][context][1] != digests["other"][context][1]


@pytest.mark.skipif(not HAS_PSUTIL, reason="psutil is not installed: MLflow samples the machine with it")
def test_system_metrics_leave_system_metrics_on_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # a one-epoch run lasts seconds
    train(compose_config(*QUICK_RUN, "trainer.max_epochs=3", "logger.system_metrics=true"), base_dir=tmp_path)
    metrics = only_run(tmp_path).data.metrics
    assert "system/cpu_utilization_percentage" in metrics, sorted(metrics)
    assert "system/system_memory_usage_megabytes" in metrics, sorted(metrics)


def test_system_metrics_without_psutil_fail_before_training_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psutil" else find_spec(name, *a))
    with pytest.raises(ConfigError, match="pip install psutil"):
        train(compose_config(*QUICK_RUN, "logger.system_metrics=true"), base_dir=tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / DEFAULT_STORE}")
    assert client.get_experiment_by_name("lossforge") is None, "nothing is recorded for a run that cannot start"


def test_log_model_leaves_a_loadable_model_and_no_active_run(tmp_path: Path) -> None:
    cfg = compose_config(*QUICK_RUN, "logger.log_model=true")
    uri_before = mlflow.get_tracking_uri()
    train(cfg, base_dir=tmp_path, summary=False)
    assert mlflow.active_run() is None
    assert mlflow.get_tracking_uri() == uri_before

    run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / DEFAULT_STORE}")
    try:
        loaded = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
        signature = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model").signature
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    assert signature is not None and signature.inputs is not None and signature.outputs is not None

    # The trained weights: the last checkpoint (one epoch, so the model as it ended) in a freshly built model.
    rebuilt = build(cfg)
    last = tmp_path / "outputs" / "runs" / "untracked" / "checkpoints" / "last.ckpt"
    trained = rebuilt.module
    trained.load_state_dict(torch.load(last, weights_only=True)["state_dict"])
    batch = rebuilt.data.test.features[:16]  # (16, D)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), trained.model.eval()(batch))  # an exported program: no eval()


def test_by_default_no_model_is_logged(tmp_path: Path) -> None:
    train(compose_config(*QUICK_RUN), base_dir=tmp_path, summary=False)
    client, (run,) = default_store_runs(tmp_path)
    assert run.outputs is None or not run.outputs.model_outputs
    assert "model" not in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
