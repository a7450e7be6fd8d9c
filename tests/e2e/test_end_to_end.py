"""The real command, in a subprocess, into a real SQLite MLflow store; determinism from the seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compose_config, default_store_runs, run_lossforge

from lossforge.training.run import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]

FAST = ["trainer.max_epochs=2", "model.hidden=[32]", "trainer.enable_progress_bar=false"]
# What the README promises a classification run records: per-epoch train/val metrics and the test metrics
# (accuracy, macro-F1, recall per digit, ECE, NLL).
EPOCH_METRICS = {"train/loss", "val/loss", "val/accuracy", "val/f1_macro", "val/ece", "val/nll"}
TEST_METRICS = {"test/loss", "test/accuracy", "test/f1_macro", "test/ece", "test/nll"}
RECALL_PER_DIGIT = {f"test/recall/{digit}" for digit in range(10)}


def test_the_default_run_learns_the_digits_and_logs_to_sqlite(tmp_path: Path) -> None:
    # The default experiment: the lecture's 3-layer tanh MLP with cross-entropy on the 8×8 digits, 20 epochs.
    result = run_lossforge(tmp_path, "trainer.enable_progress_bar=false", "run_name=e2e")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/accuracy" in result.stdout and "MLflow run:" in result.stdout
    assert "-m lossforge ui --tracking-uri sqlite:///" in result.stdout  # works without the venv activated

    client, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED" and run.info.run_name == "e2e"
    assert run.data.params["loss.name"] == "cross_entropy" and run.data.params["dataset.name"] == "digits"
    assert run.data.params["model.hidden"] == "[512, 512]" and run.data.params["seed"] == "0"
    assert run.data.tags["loss.provider"].startswith("lossforge==")
    assert run.data.tags["lossforge.device"].endswith("(1 process)")  # cpu: N threads, or the GPU's name
    assert f"ui --tracking-uri sqlite:///{tmp_path}/outputs/mlflow.db --run {run.info.run_id}\n" in result.stdout
    assert set(run.data.metrics) == EPOCH_METRICS | TEST_METRICS | RECALL_PER_DIGIT
    for name in EPOCH_METRICS:  # one value per epoch, the epoch's number (1 … 20, as the terminal shows it) as the step
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == list(range(1, 21)), name
    # The README's table: 0.970 accuracy, NLL 0.120 (seed 0); the margins leave room for other CPUs' rounding.
    metrics = run.data.metrics
    assert metrics["test/accuracy"] >= 0.9 and metrics["test/f1_macro"] >= 0.9, metrics
    assert metrics["test/nll"] <= 0.3 and metrics["test/loss"] == pytest.approx(metrics["test/nll"]), metrics
    assert min(metrics[name] for name in RECALL_PER_DIGIT) >= 0.8, metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "plots", "hydra", "checkpoints"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/confusion_matrix.png", "plots/reliability.png", "plots/curves.png", "plots/loss.png"}
    assert "hydra/overrides.yaml" in {a.path for a in client.list_artifacts(run.info.run_id, "hydra")}
    assert "checkpoints/best.ckpt" in {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    cfg = compose_config(*FAST, "trainer.max_epochs=1", "trainer.accelerator=cpu")
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
    cfg = compose_config(*FAST, "trainer.max_epochs=1", "logger.log_checkpoint=false", *overrides)
    train(cfg, base_dir=tmp_path)
    client, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plot in logged and "plots/loss.png" in logged  # the trained loss against its task's axis
