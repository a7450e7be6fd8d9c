"""The LightningModule: one model, one loss (and miner), trained and evaluated for one task.

It calls the loss and logs; nothing else. What the task means — how outputs are read, how targets are
handed to the loss, which metrics are computed — comes from the task's `TaskSpec`
([lossforge.tasks][]); what the loss declares comes from [lossforge.contract.loss_traits][]. The
NaN guard, the RNG state kept for resume, checkpoints and MLflow logging are callbacks of their own
([lossforge.training.guards][], [lossforge.training.resume][], [lossforge.tracking.callback][]).

Logged per epoch (`stage` is `train`, `val` or `test`):

* every task: `{stage}/loss` — the training loss evaluated on that split;
* the task's metrics (`TaskSpec.metrics`): multiclass / binary `accuracy`, `f1_macro`, `ece`
  (expected calibration error, 15 bins), `nll` (cross-entropy of the predicted probabilities, whatever
  the training loss was) and, on test, `recall/<class>` per class (multiclass); multilabel
  `subset_accuracy`, `f1_macro`; regression `mae`, `rmse`;
* metric learning: `train/tuples` and `train/active_fraction` (tuples the loss saw, and the share with
  non-zero loss), and on val/test `recall_at_1`, `recall_at_5`, `map_at_r`, `knn_accuracy`.
"""

from __future__ import annotations

from typing import Any, cast

import lightning as L
import torch
import torchmetrics
from torch import Tensor, nn

from lossforge.contract import (
    LossPlugin,
    LossTraits,
    MinerPlugin,
    loss_parameters,
    loss_traits,
    set_scan_targets,
    tuple_counts,
)
from lossforge.distributed import global_batch
from lossforge.mining.memory import CrossBatchMemory
from lossforge.tasks import spec_for
from lossforge.training.epoch_means import EpochMeans, epoch_ends
from lossforge.training.guards import check_reduced_loss
from lossforge.training.optim import OptimizerConfig, build_optimizer
from lossforge.training.resume import check_loss_parameters


class LossTask(L.LightningModule):
    """Train `model` with `loss` (and `miner`) for `task`; log loss and task metrics per epoch.

    Args:
        model: maps `(N, F)` features to `(N, num_outputs)` outputs (embeddings for metric learning).
        loss: a loss meeting [lossforge.contract.LossPlugin][].
        task: the training task (a [lossforge.contract.Task][]).
        num_outputs: classes / labels / targets of the dataset (for metrics).
        class_names: names for per-class metrics.
        miner: optional miner for metric losses.
        memory: optional cross-batch memory (XBM, [lossforge.mining.memory][]): training steps mine
            against the embeddings of recent batches too. Its buffers are in the checkpoints.
        optimizer: optimizer settings (default: Adam, lr 1e-3).
        scan_targets: let the loss re-check target *values* (labels in {0, 1}, class indices in range) on
            every batch. Off by default: lossforge's data were validated once when the `DataSplits` was
            built, so a loss that declares `scan_targets` is told to skip its scans (no per-batch scans,
            no host-device sync for them on a GPU). Turn it on for batches from elsewhere.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        loss: LossPlugin,
        task: str,
        num_outputs: int,
        class_names: tuple[str, ...] = (),
        miner: MinerPlugin | None = None,
        memory: CrossBatchMemory | None = None,
        optimizer: OptimizerConfig | None = None,
        scan_targets: bool = False,
        traits: LossTraits | None = None,
    ) -> None:
        super().__init__()
        self.model, self.loss, self.miner, self.memory = model, loss, miner, memory
        self.spec = spec_for(task)
        self.traits = traits or loss_traits(loss)  # what the run read when it built the loss, or read here
        set_scan_targets(loss, scan_targets)
        self.num_outputs, self.class_names = num_outputs, class_names
        self.optimizer_config = optimizer or OptimizerConfig()
        self.stage_metrics = nn.ModuleDict(
            {stage: self.spec.metrics(num_outputs, stage=stage) for stage in ("val", "test")}
        )
        self.epoch_means = EpochMeans()
        self._outputs: list[Tensor] = []  # evaluation outputs kept for retrieval metrics and test plots
        self._targets: list[Tensor] = []
        #: Test-set outputs and targets kept after ``trainer.test`` for plots (confusion matrix, …).
        self.test_predictions: Tensor | None = None
        self.test_targets: Tensor | None = None

    # -- the loss ------------------------------------------------------------------------------------
    def forward(self, features: Tensor) -> Tensor:
        return self.spec.read_outputs(self.model(features), self.num_outputs)  # (N, …) as the task reads it

    def loss_value(self, outputs: Tensor, targets: Tensor, *, mine: bool = False) -> Tensor:
        """The loss of a batch's outputs — one number, checked (`guards.check_reduced_loss`): metric losses
        get the miner's tuples when `mine`."""
        value = self._loss_value(outputs, targets, mine=mine)
        check_reduced_loss(value, loss=self.loss)
        return value

    def _loss_value(self, outputs: Tensor, targets: Tensor, *, mine: bool) -> Tensor:
        if self.spec.embedding:
            if mine and self.memory is not None:  # XBM: this step's anchors against recent batches too
                return self.memory.loss(self.loss, self.miner, outputs, targets)
            indices = self.miner(outputs, targets) if mine and self.miner is not None else None
            return self.loss(outputs, targets, indices)
        return self.loss(outputs, self.spec.loss_target(targets, encoding=self.traits.binary_target_encoding))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> Tensor:
        features, targets = batch
        outputs = self(features)
        # DDP: the training loss sees the global batch — every process's outputs (gradient to this
        # process's own) and targets — so miners find negatives held by other processes and the loss is
        # the single-process one; ``scale`` (the world size) undoes DDP's gradient averaging. 1 otherwise.
        outputs, targets, scale = global_batch(outputs, targets)
        loss = self.loss_value(outputs, targets, mine=True)
        # DDP: the weight is the global batch size, equal on every process: Lightning's sync_dist averages
        # summed batch sizes in integer arithmetic (gloo), which would bias per-process sizes that differ.
        size = len(targets)
        self.epoch_means.add("train/loss", loss, size)
        counts = tuple_counts(self.loss)
        if counts is not None:
            tuples, active = counts
            self.epoch_means.add("train/tuples", tuples.float(), size)
            self.epoch_means.add("train/active_fraction", active / tuples.float().clamp(min=1), size)
        self._gradient_scale = scale
        return loss * scale if scale != 1 else loss

    def on_after_backward(self) -> None:
        # DDP: every process computes the loss of the whole global batch, so the gradient of the loss's own
        # parameters (proxies) is already the full one on each process — unlike the model's, which only
        # flows back through this process's part. DDP's average leaves it times ``scale``; undo that, so a
        # learnable loss trains as in one process.
        scale = getattr(self, "_gradient_scale", 1)
        if scale != 1:
            for parameter in loss_parameters(self.loss):
                if parameter.grad is not None:
                    parameter.grad.div_(scale)

    # -- training metrics: logged once per epoch -----------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self.epoch_means.clear()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_index: int) -> None:
        if epoch_ends(self.trainer, batch_index):
            self._log_epoch_means()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_means()  # an epoch cut short where the check above did not see it coming

    def _log_epoch_means(self) -> None:
        # DDP: every process holds the same sums (the loss sees the global batch), so sync_dist averages
        # equal values; ``count`` is the global number of samples, equal on every process too.
        for name, (total, count) in self.epoch_means.pop().items():
            self.log(
                name,
                total / count,
                prog_bar=name == "train/loss",
                on_step=False,
                on_epoch=True,
                batch_size=count,
                sync_dist=True,
            )

    # -- evaluation ----------------------------------------------------------------------------------
    # Validation and test are not sharded under DDP (lossforge.distributed): each process has the whole
    # batch, and everything logged here is equal on every process.
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_index: int) -> None:
        self._evaluate(batch, "test")

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        features, targets = batch
        outputs = self(features)
        size = len(targets)
        loss = self.loss_value(outputs, targets)
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=stage == "val",
            on_step=False,
            on_epoch=True,
            batch_size=size,
            sync_dist=True,
        )
        outputs = outputs.detach()
        if self.spec.embedding or stage == "test":
            self._outputs.append(outputs)
            self._targets.append(targets)
        if not self.spec.embedding:
            nll = self.spec.update(self._metrics(stage), outputs.float(), targets)
            if nll is not None:
                self.log(f"{stage}/nll", nll, on_step=False, on_epoch=True, batch_size=size, sync_dist=True)

    def _end_of_evaluation(self, stage: str) -> None:
        kept = (torch.cat(self._outputs), torch.cat(self._targets)) if self._outputs else None
        self._outputs, self._targets = [], []
        if self.spec.embedding:
            if kept is not None:
                cosine = self.traits.distance == "cosine"
                for key, value in self.spec.evaluate_embeddings(*kept, cosine=cosine).items():
                    self.log(f"{stage}/{key}", value, prog_bar=key == "recall_at_1", sync_dist=True)
        else:
            metrics = self._metrics(stage)
            if metrics:
                self.log_dict(self._named(stage, metrics.compute()), prog_bar=stage == "val", sync_dist=True)
                metrics.reset()
        if stage == "test" and kept is not None:
            self.test_predictions, self.test_targets = kept[0].cpu(), kept[1].cpu()

    def _metrics(self, stage: str) -> torchmetrics.MetricCollection:
        return cast(torchmetrics.MetricCollection, self.stage_metrics[stage])

    def _named(self, stage: str, computed: dict[str, Tensor]) -> dict[str, Tensor]:
        """`{stage}/{metric}`; a per-class vector becomes `{stage}/{metric}/{class name}`."""
        names = self.class_names or tuple(str(c) for c in range(self.num_outputs))
        named = {}
        for key, value in computed.items():
            if value.numel() == 1:
                named[f"{stage}/{key}"] = value
            else:
                named.update({f"{stage}/{key}/{name}": v for name, v in zip(names, value, strict=True)})
        return named

    def on_validation_epoch_end(self) -> None:
        self._end_of_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._end_of_evaluation("test")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Before the weights load: a learnable loss's parameters are sized by the data and model, so a
        # resume with other ones gets an error naming the loss, not torch's size-mismatch text.
        check_loss_parameters(checkpoint["state_dict"], self.loss, loss_name=self.traits.name, prefix="loss.")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # A loss with parameters (proxies) gets its own group: lr × its multiplier, no weight decay (optim.py).
        own = loss_parameters(self.loss)
        owned = {id(parameter) for parameter in own}
        return build_optimizer(
            self.optimizer_config,
            (parameter for parameter in self.parameters() if id(parameter) not in owned),
            loss_parameters=own,
            loss_lr_multiplier=self.traits.lr_multiplier,
        )
