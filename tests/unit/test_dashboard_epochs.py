"""Epochs are numbered the same way in the terminal and in MLflow's steps: from 1 (the terminal's `epoch  3/20` is
MLflow's step 3) — the epoch line and the MLflow callback driven by one trainer, against a real SQLite store."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from mlflow import MlflowClient

from lossforge.tasks import spec_for
from lossforge.tracking import mlflow_run
from lossforge.tracking.callback import EpochMetricsToMlflow
from lossforge.training.progress import EpochLines


def trainer_at(epoch: int) -> Any:
    """What the two callbacks read of Lightning's trainer at the end of 0-based epoch `epoch` of 20."""
    return SimpleNamespace(
        callback_metrics={"train/loss": torch.tensor(0.5), "val/loss": torch.tensor(0.4)},
        current_epoch=epoch,
        max_epochs=20,
        is_global_zero=True,
        progress_bar_callback=None,
    )


def test_the_terminal_s_epoch_number_is_mlflow_s_step(default_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    module: Any = SimpleNamespace(spec=spec_for("multiclass"))
    with mlflow_run(tracking_uri=default_store, experiment="lossforge", run_name="epochs", tags={}) as run:
        lines, to_mlflow = EpochLines(), EpochMetricsToMlflow(run)
        for epoch in range(3):  # Lightning's current_epoch 0, 1, 2
            lines.on_train_epoch_end(trainer_at(epoch), module)
            to_mlflow.on_train_epoch_end(trainer_at(epoch), module)
        # A resumed run that already logged epochs 1-3 logs from epoch 4 on, never one twice.
        resumed = EpochMetricsToMlflow(run, logged_through_epoch=3)
        for epoch in (2, 3):
            resumed.on_train_epoch_end(trainer_at(epoch), module)
    shown = [int(match) for match in re.findall(r"^epoch +(\d+)/20", capsys.readouterr().out, flags=re.MULTILINE)]
    steps = [metric.step for metric in MlflowClient(default_store).get_metric_history(run.run_id, "train/loss")]
    assert shown == [1, 2, 3]
    assert steps == [1, 2, 3, 4]
