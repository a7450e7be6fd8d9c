"""The real command, in a subprocess, into a real SQLite MLflow store; determinism from the seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import default_store_runs, run_lossforge
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from lossforge.hydra_options import register_components
from lossforge.training.run import train

FAST = ["trainer.max_epochs=2", "model.hidden=[32]", "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_python_m_lossforge_trains_and_logs_to_sqlite(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, *FAST, "run_name=e2e")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/accuracy" in result.stdout and "MLflow run:" in result.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout

    client, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED" and run.info.run_name == "e2e"
    assert run.data.params["loss.name"] == "cross_entropy"
    assert run.data.params["model.hidden"] == "[32]" and run.data.params["seed"] == "0"
    assert run.data.tags["loss.provider"].startswith("lossforge==")
    assert run.data.tags["lossforge.device"].endswith("(1 process)")  # cpu: N threads, or the GPU's name
    assert run.info.run_id in result.stdout
    assert len(client.get_metric_history(run.info.run_id, "val/accuracy")) == 2  # one per epoch
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [0, 1]
    assert 0.0 <= run.data.metrics["test/accuracy"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "plots", "hydra", "checkpoints"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/confusion_matrix.png", "plots/reliability.png", "plots/curves.png"}
    assert "hydra/overrides.yaml" in {a.path for a in client.list_artifacts(run.info.run_id, "hydra")}
    assert "checkpoints/best.ckpt" in {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}


def _compose(*overrides: str):
    register_components(with_parameters=True)
    GlobalHydra.instance().clear()
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    cfg = _compose(*FAST, "trainer.max_epochs=1", "trainer.accelerator=cpu")
    first = train(cfg, base_dir=tmp_path)
    second = train(cfg, base_dir=tmp_path)
    assert first == second
    assert first["test/accuracy"] > 0.5


@pytest.mark.parametrize(
    ("overrides", "plot"),
    [
        (["dataset=regression_outliers", "loss=huber"], "plots/predicted_vs_true.png"),
        (["loss=triplet", "miner=hard_triplets"], "plots/embeddings.png"),
        (["dataset=digits_binary", "loss=hinge"], "plots/confusion_matrix.png"),
        (["dataset=digits_multilabel", "loss=bce"], "plots/curves.png"),
    ],
)
def test_each_task_logs_its_plot(tmp_path: Path, overrides: list[str], plot: str) -> None:
    cfg = _compose(*FAST, "trainer.max_epochs=1", "logger.log_checkpoint=false", *overrides)
    train(cfg, base_dir=tmp_path)
    client, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert plot in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
