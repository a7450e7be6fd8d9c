"""The LightningModule: one model, one loss (and miner), trained and evaluated for one task.

The task ("regression", "binary", "multiclass", "multilabel" or "metric") decides how outputs are read
(prediction rule) and which metrics are computed; the loss's declared class attributes decide how
targets are handed to it (``binary_target_encoding``, ``tuple_kind``). No ``isinstance`` chains.

Logged per epoch (``stage`` is ``train``, ``val`` or ``test``):

* every task: ``{stage}/loss`` — the training loss evaluated on that split;
* multiclass / binary: ``accuracy``, ``f1_macro``, ``ece`` (expected calibration error, 15 bins),
  ``nll`` (cross-entropy of the predicted probabilities, whatever the training loss was) and, on test,
  ``recall/<class>`` per class;
* multilabel: ``subset_accuracy``, ``f1_macro``; regression: ``mae``, ``rmse``;
* metric: ``train/tuples`` and ``train/active_fraction`` (mined tuples, and the share with non-zero loss),
  and on val/test ``recall_at_1``, ``recall_at_5``, ``map_at_r``, ``knn_accuracy``.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F

from lossforge.distributed import global_batch
from lossforge.evaluation.retrieval import retrieval_metrics
from lossforge.losses.base import validated_targets


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the loss, epoch and step."""


def _as_tuple(value: Any) -> Any:
    """``random.setstate`` wants the nested tuples that a checkpoint round trip may turn into lists."""
    return tuple(_as_tuple(item) for item in value) if isinstance(value, list | tuple) else value


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # SGD only


def build_optimizer(config: OptimizerConfig, parameters: Any) -> torch.optim.Optimizer:
    if config.name not in OPTIMIZERS:
        import difflib

        close = difflib.get_close_matches(config.name, list(OPTIMIZERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown optimizer {config.name!r}.{hint} Available: {', '.join(sorted(OPTIMIZERS))}.")
    if config.lr <= 0:
        raise ValueError(f"optimizer: expected `lr` > 0, got {config.lr}")
    extra = {"momentum": config.momentum} if config.name == "sgd" else {}
    return OPTIMIZERS[config.name](parameters, lr=config.lr, weight_decay=config.weight_decay, **extra)


# DDP: every process evaluates the whole val/test split (lossforge.distributed), so a metric must not sum
# its state over the processes — it would count every sample once per process.
_LOCAL: dict[str, Any] = {"sync_on_compute": False}


def _classification_metrics(task: str, num_outputs: int) -> torchmetrics.MetricCollection:
    if task == "multiclass":
        return torchmetrics.MetricCollection(
            {
                "accuracy": torchmetrics.classification.MulticlassAccuracy(num_outputs, average="micro", **_LOCAL),
                "f1_macro": torchmetrics.classification.MulticlassF1Score(num_outputs, average="macro", **_LOCAL),
                "ece": torchmetrics.classification.MulticlassCalibrationError(num_outputs, n_bins=15, **_LOCAL),
            }
        )
    if task == "binary":
        return torchmetrics.MetricCollection(
            {
                "accuracy": torchmetrics.classification.BinaryAccuracy(**_LOCAL),
                "f1_macro": torchmetrics.classification.MulticlassF1Score(2, average="macro", **_LOCAL),
                "ece": torchmetrics.classification.BinaryCalibrationError(n_bins=15, **_LOCAL),
            }
        )
    if task == "multilabel":
        return torchmetrics.MetricCollection(
            {
                "subset_accuracy": torchmetrics.classification.MultilabelExactMatch(num_outputs, **_LOCAL),
                "f1_macro": torchmetrics.classification.MultilabelF1Score(num_outputs, average="macro", **_LOCAL),
            }
        )
    if task == "regression":
        return torchmetrics.MetricCollection(
            {
                "mae": torchmetrics.MeanAbsoluteError(**_LOCAL),
                "rmse": torchmetrics.MeanSquaredError(squared=False, **_LOCAL),
            }
        )
    return torchmetrics.MetricCollection({})


class LossTask(L.LightningModule):
    """Train ``model`` with ``loss`` (and ``miner``) for ``task``; log loss and task metrics per epoch.

    Args:
        model: maps ``(N, F)`` features to ``(N, num_outputs)`` outputs (embeddings for ``"metric"``).
        loss: a registered loss; called ``loss(prediction, target)``, or ``loss(embeddings, labels,
            indices_tuple)`` for ``"metric"``.
        task: the training task, one of ``lossforge.losses.base.TASKS``.
        num_outputs: classes / labels / targets of the dataset (for metrics).
        class_names: names for per-class metrics.
        miner: optional miner for metric losses.
        optimizer: optimizer settings.
        scan_targets: re-check target *values* (labels in {0, 1}, class indices in range) on every batch.
            Off by default: lossforge's data were validated once when the ``DataSplits`` was built, so
            the loss calls run inside :func:`lossforge.losses.base.validated_targets` (no per-batch scans,
            no host-device sync for them on a GPU). Turn it on for batches from elsewhere.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        loss: nn.Module,
        task: str,
        num_outputs: int,
        class_names: tuple[str, ...] = (),
        miner: nn.Module | None = None,
        optimizer: OptimizerConfig = OptimizerConfig(),
        scan_targets: bool = False,
    ) -> None:
        super().__init__()
        self.scan_targets = scan_targets
        self.model, self.loss, self.miner = model, loss, miner
        self.task, self.num_outputs, self.class_names = task, num_outputs, class_names
        self.optimizer_config = optimizer
        self.plus_minus_one = getattr(loss, "binary_target_encoding", "zero_one") == "plus_minus_one"
        self.stage_metrics = nn.ModuleDict(
            {stage: _classification_metrics(task, num_outputs) for stage in ("val", "test")}
        )
        self.per_class_recall = (
            torchmetrics.classification.MulticlassRecall(num_outputs, average="none", **_LOCAL)
            if task == "multiclass"
            else None
        )
        self._embeddings: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._epoch_sums: dict[str, tuple[Tensor, int]] = {}  # name -> (Σ weight·value, Σ weight)
        self._unchecked: list[tuple[int, int, Tensor]] = []  # (step, batch, loss) not yet checked for NaN/inf
        #: Test-set outputs and targets kept after ``trainer.test`` for plots (confusion matrix, …).
        self.test_predictions: Tensor | None = None
        self.test_targets: Tensor | None = None

    # -- the shared step -----------------------------------------------------------------------------
    def forward(self, features: Tensor) -> Tensor:
        outputs = self.model(features)  # (N, num_outputs)
        if self.task == "binary" or (self.task == "regression" and self.num_outputs == 1):
            return outputs.squeeze(-1)  # (N,)
        return outputs

    def _loss_target(self, targets: Tensor) -> Tensor:
        if self.task == "binary":
            targets = targets.float()
            return 2 * targets - 1 if self.plus_minus_one else targets
        return targets

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> tuple[Tensor, Tensor]:
        """The loss to backpropagate (training) or log, and this process's outputs."""
        features, targets = batch
        outputs = self(features)
        # DDP: the training loss sees the global batch — every process's outputs (gradient to this
        # process's own) and targets — so miners find negatives held by other processes and the loss is
        # the single-process one; ``scale`` (the world size) undoes DDP's gradient averaging. 1 otherwise.
        # Validation and test are not sharded (lossforge.distributed): each process has the whole batch.
        loss_outputs, loss_targets, scale = (outputs, targets, 1)
        if stage == "train":
            loss_outputs, loss_targets, scale = global_batch(outputs, targets)
        # DDP: what is logged is equal on every process (global batch, whole split), and weighted by the
        # global batch size, equal on every process too: Lightning's sync_dist averages the summed batch
        # sizes in integer arithmetic (gloo), which would bias per-process sizes that differ.
        size = len(loss_targets)
        trust = nullcontext() if self.scan_targets else validated_targets()
        if self.task == "metric":
            indices = self.miner(loss_outputs, loss_targets) if self.miner is not None and stage == "train" else None
            with trust:
                loss = self.loss(loss_outputs, loss_targets, indices)
            if stage == "train" and hasattr(self.loss, "last_num_tuples"):
                tuples = self.loss.last_num_tuples.float()
                self._add_to_epoch_mean("train/tuples", tuples, size)
                self._add_to_epoch_mean("train/active_fraction", self.loss.last_num_active / tuples.clamp(min=1), size)
        else:
            with trust:
                loss = self.loss(loss_outputs, self._loss_target(loss_targets))
        if stage == "train":
            self._add_to_epoch_mean("train/loss", loss, size)
        else:
            log_options = {"on_step": False, "on_epoch": True, "batch_size": size, "sync_dist": True}
            self.log(f"{stage}/loss", loss, prog_bar=stage == "val", **log_options)
        return (loss * scale if scale != 1 else loss), outputs

    # -- training metrics: running sums on the device, logged once per epoch ---------------------------
    # A Lightning ``self.log`` call costs ~0.4 ms of Python per step (benchmarks/README.md, 10 % of a step of
    # the lecture's MLP on a CPU); a running sum costs one in-place add and no host sync. The means are
    # logged at the epoch's last batch, before validation and the end-of-epoch callbacks read them.
    def _add_to_epoch_mean(self, name: str, value: Tensor, weight: int) -> None:
        total, count = self._epoch_sums.get(name, (None, 0))
        weighted = value.detach().float() * weight
        self._epoch_sums[name] = (weighted if total is None else total.add_(weighted), count + weight)

    def on_train_epoch_start(self) -> None:
        self._epoch_sums, self._unchecked = {}, []

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_index: int) -> None:
        trainer = self.trainer
        epoch_ends = (
            trainer.is_last_batch
            or batch_index + 1 >= trainer.num_training_batches
            or 0 <= trainer.max_steps <= trainer.global_step
            or trainer.should_stop
        )
        if epoch_ends:
            self._check_finite()
            self._log_epoch_means()

    def on_train_epoch_end(self) -> None:
        self._check_finite()  # an epoch cut short where the checks above did not see it coming
        self._log_epoch_means()

    def _log_epoch_means(self) -> None:
        # DDP: every process holds the same sums (the loss sees the global batch), so sync_dist averages
        # equal values; ``count`` is the global number of samples, equal on every process too.
        for name, (total, count) in self._epoch_sums.items():
            options = {"on_step": False, "on_epoch": True, "batch_size": count, "sync_dist": True}
            self.log(name, total / count, prog_bar=name == "train/loss", **options)
        self._epoch_sums = {}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> Tensor:
        loss, _ = self._step(batch, "train")
        # Stop on a NaN/inf loss, naming its step. Reading a value back from a GPU waits for every queued
        # kernel (a stall per step, ~0.1 ms on an H100 with the lecture's MLP), so on an accelerator the
        # losses are kept, unread, and checked together every `trainer.log_every_n_steps` steps and at the
        # epoch's end — before validation and checkpointing, so the kept checkpoint is still good. On the
        # CPU reading is free: every step is checked before its optimizer step.
        self._unchecked.append((self.global_step, batch_index, loss.detach()))
        if len(self._unchecked) >= self._check_window(loss):
            self._check_finite()
        return loss

    def _check_window(self, loss: Tensor) -> int:
        """How many steps' losses are checked together: 1 on the CPU, else ``log_every_n_steps``."""
        return 1 if loss.device.type == "cpu" else max(1, self.trainer.log_every_n_steps)

    def _check_finite(self) -> None:
        unchecked, self._unchecked = self._unchecked, []
        if not unchecked:
            return
        losses = torch.stack([loss for _, _, loss in unchecked])
        finite = torch.isfinite(losses)
        if bool(finite.all()):  # the one host sync
            return
        first = int((~finite).nonzero()[0])
        step, batch_index, _ = unchecked[first]
        name = getattr(self.loss, "name", type(self.loss).__name__)
        raise NonFiniteLossError(
            f"The {name} loss became {float(losses[first])} at epoch {self.current_epoch}, step {step} "
            f"(batch {batch_index}). Training stopped; the last good checkpoint is kept. Common causes: a "
            f"learning rate too high for this loss (optimizer.lr={self.optimizer_config.lr}), or targets "
            f"the loss does not expect."
        )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> None:
        self._evaluate(batch, "test")

    # -- evaluation ----------------------------------------------------------------------------------
    def _probabilities(self, outputs: Tensor) -> Tensor:
        if self.task == "multiclass":
            return outputs.softmax(dim=-1)
        return outputs.sigmoid()  # binary scores and multilabel logits

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        _, outputs = self._step(batch, stage)
        targets = batch[1]
        if self.task == "metric":
            self._embeddings.append(outputs.detach())
            self._labels.append(targets)
            return
        if self.task in ("multiclass", "binary", "multilabel"):
            probabilities = self._probabilities(outputs.detach().float())
            metrics = self.stage_metrics[stage]
            if self.task == "binary":
                metrics["accuracy"].update(probabilities, targets)
                metrics["ece"].update(probabilities, targets)
                metrics["f1_macro"].update((probabilities > 0.5).long(), targets)
                nll = F.binary_cross_entropy_with_logits(outputs.float(), targets.float())
            elif self.task == "multiclass":
                metrics.update(probabilities, targets)
                nll = F.cross_entropy(outputs.float(), targets)
                if stage == "test" and self.per_class_recall is not None:
                    self.per_class_recall.update(probabilities, targets)
            else:
                metrics.update(probabilities, targets.long())
                nll = F.binary_cross_entropy_with_logits(outputs.float(), targets.float())
            if self.task != "multilabel":
                self.log(f"{stage}/nll", nll, on_step=False, on_epoch=True, batch_size=len(targets), sync_dist=True)
        else:
            self.stage_metrics[stage].update(outputs.detach().float(), targets.float())
        if stage == "test":
            self._embeddings.append(outputs.detach())
            self._labels.append(targets)

    def _end_of_evaluation(self, stage: str) -> None:
        if self.task == "metric":
            if self._embeddings:
                embeddings, labels = torch.cat(self._embeddings), torch.cat(self._labels)
                cosine = getattr(self.loss, "distance", None) == "cosine"
                for key, value in retrieval_metrics(embeddings, labels, cosine=cosine).items():
                    self.log(f"{stage}/{key}", value, prog_bar=key == "recall_at_1", sync_dist=True)
                if stage == "test":
                    self.test_predictions, self.test_targets = embeddings.cpu(), labels.cpu()
        else:
            metrics = self.stage_metrics[stage]
            if metrics:
                self.log_dict(
                    {f"{stage}/{key}": value for key, value in metrics.compute().items()},
                    prog_bar=stage == "val",
                    sync_dist=True,
                )
                metrics.reset()
            if stage == "test" and self._embeddings:
                self.test_predictions = torch.cat(self._embeddings).cpu()
                self.test_targets = torch.cat(self._labels).cpu()
            if stage == "test" and self.per_class_recall is not None:
                recalls = self.per_class_recall.compute()
                names = self.class_names or tuple(str(c) for c in range(self.num_outputs))
                recall = {f"test/recall/{name}": value for name, value in zip(names, recalls, strict=True)}
                self.log_dict(recall, sync_dist=True)
                self.per_class_recall.reset()
        self._embeddings, self._labels = [], []

    def on_validation_epoch_end(self) -> None:
        self._end_of_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._end_of_evaluation("test")

    # -- resumable randomness: a resumed run draws the same random numbers as an uninterrupted one ---------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lossforge_rng"] = {"torch": torch.get_rng_state(), "python": random.getstate()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("lossforge_rng")
        if state is not None:
            torch.set_rng_state(state["torch"])
            random.setstate(_as_tuple(state["python"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.optimizer_config, self.parameters())
