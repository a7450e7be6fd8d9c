"""LossTask: what it logs per training epoch, and that the once-per-epoch means equal the per-step ones."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch

from lossforge import build_loss, build_miner
from lossforge.contract import Task
from lossforge.data.base import Split
from lossforge.data.loaders import make_loader
from lossforge.losses.base import LossInputError
from lossforge.losses.classification import cross_entropy
from lossforge.models import build_model
from lossforge.training.module import LossTask


class StepRecorder(L.Callback):
    """Every training step's loss and batch size, and what the loss module counted (metric losses)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.sizes: list[int] = []
        self.tuples: list[float] = []
        self.active: list[float] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_index: int) -> None:
        self.losses.append(float(outputs["loss"]))
        self.sizes.append(len(batch[1]))
        if hasattr(module.loss, "last_num_tuples"):
            tuples = float(module.loss.last_num_tuples)
            self.tuples.append(tuples)
            self.active.append(float(module.loss.last_num_active) / max(tuples, 1.0))


SAMPLES, BATCH = 100, 16
STEPS = -(-SAMPLES // BATCH)  # six full batches and one of 4


def weighted_mean(values: list[float], weights: list[int]) -> float:
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def fit(task: Task, loss: str, *, miner: str | None = None, **trainer_options: Any) -> tuple:
    torch.manual_seed(0)
    features = torch.randn(SAMPLES, 6)
    targets = torch.arange(SAMPLES) % 4
    model = build_model("mlp", input_shape=(6,), output_dim=4, embedding=task == Task.METRIC, hidden=[8])
    module = LossTask(
        model=model,
        loss=build_loss(loss),
        task=task,
        num_outputs=4,
        miner=build_miner(miner) if miner else None,
    )
    recorder = StepRecorder()
    options = {"max_epochs": 1, **trainer_options}
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
        **options,
    )
    trainer.fit(module, make_loader(Split(features, targets), batch_size=BATCH, shuffle=True, seed=0))
    return trainer, recorder


@pytest.mark.parametrize(
    "trainer_options, steps",
    [
        ({}, STEPS),
        ({"limit_train_batches": 3}, 3),
        ({"max_steps": 5}, 5),  # training stops inside the epoch
    ],
    ids=["whole_epoch", "limit_train_batches", "max_steps"],
)
def test_train_loss_is_the_sample_weighted_mean_of_the_epochs_steps(trainer_options: dict, steps: int) -> None:
    trainer, recorder = fit(Task.MULTICLASS, "cross_entropy", **trainer_options)
    assert len(recorder.losses) == steps
    expected = weighted_mean(recorder.losses, recorder.sizes)
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(expected, rel=1e-6)
    # once per epoch only: no per-step copies under Lightning's `_step` / `_epoch` names
    assert not [key for key in trainer.callback_metrics if key.endswith(("_step", "_epoch"))]


def test_every_epoch_logs_its_own_mean() -> None:
    trainer, recorder = fit(Task.MULTICLASS, "cross_entropy", max_epochs=2)
    last_epoch = slice(STEPS, 2 * STEPS)
    expected = weighted_mean(recorder.losses[last_epoch], recorder.sizes[last_epoch])
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(expected, rel=1e-6)


def test_metric_losses_log_mined_tuples_and_active_fraction_per_epoch() -> None:
    trainer, recorder = fit(Task.METRIC, "triplet", miner="semihard_triplets")
    metrics = trainer.callback_metrics
    assert float(metrics["train/loss"]) == pytest.approx(weighted_mean(recorder.losses, recorder.sizes), rel=1e-6)
    assert float(metrics["train/tuples"]) == pytest.approx(weighted_mean(recorder.tuples, recorder.sizes), rel=1e-6)
    expected_active = weighted_mean(recorder.active, recorder.sizes)
    assert float(metrics["train/active_fraction"]) == pytest.approx(expected_active, rel=1e-6)
    assert 0 < float(metrics["train/tuples"])


class ScanSpy(torch.nn.Module):
    """Cross-entropy that records whether it was told to scan its targets' values."""

    tasks = (Task.MULTICLASS,)

    def __init__(self) -> None:
        super().__init__()
        self.scan_targets = True
        self.scanned: list[bool] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.scanned.append(self.scan_targets)
        return cross_entropy(logits, target, check_values=self.scan_targets)


@pytest.mark.parametrize("scan_targets", [False, True])
def test_loss_calls_trust_validated_data_unless_asked_to_scan(scan_targets: bool) -> None:
    spy = ScanSpy()
    module = LossTask(
        model=torch.nn.Linear(6, 4), loss=spy, task=Task.MULTICLASS, num_outputs=4, scan_targets=scan_targets
    )
    module.loss_value(module(torch.randn(8, 6)), torch.arange(8) % 4)
    assert spy.scanned == [scan_targets]
    features, bad_targets = torch.randn(2, 6), torch.tensor([0, 4])  # class 4 of 4
    if scan_targets:
        with pytest.raises(LossInputError, match=r"class indices in \[0, 3\]"):
            module.loss_value(module(features), bad_targets)
    else:  # not scanned: torch's own error, not lossforge's
        with pytest.raises(IndexError, match="out of bounds"):
            module.loss_value(module(features), bad_targets)
