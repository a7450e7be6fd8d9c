"""Stop a run whose training loss becomes NaN or infinite, naming the loss, epoch and step."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from lossforge.training.epoch_means import epoch_ends


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the loss, epoch and step."""

    outcome = "diverged"  #: the run's ``lossforge.outcome`` (docs/decisions.md §2): an outcome of the loss


class FiniteLossGuard(L.Callback):
    """Check every training loss for NaN/inf before it is backpropagated or checkpointed.

    Reading a value back from a GPU waits for every queued kernel (a stall per step), so on an
    accelerator the losses are kept, unread, and checked together every ``trainer.log_every_n_steps``
    steps and at the epoch's end — before validation and checkpointing, so the kept checkpoint is still
    good. On the CPU reading is free: every step is checked before its backward pass.

    Args:
        loss_name: the loss, for the message.
        learning_rate: the optimizer's learning rate, for the message (a common cause).
        accelerator_window: how many steps' losses are checked together off the CPU (the trainer's
            ``log_every_n_steps``, whose default is 50).
    """

    def __init__(self, *, loss_name: str, learning_rate: float, accelerator_window: int = 50) -> None:
        self.loss_name = loss_name
        self.learning_rate = learning_rate
        self.accelerator_window = max(1, accelerator_window)
        self._batch_index = 0
        self._unchecked: list[tuple[int, int, Tensor]] = []  # (step, batch, loss) not yet checked

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._unchecked = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_index = batch_idx

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        self._unchecked.append((trainer.global_step, self._batch_index, loss.detach()))
        if len(self._unchecked) >= self.window(loss):
            self.check(trainer.current_epoch)

    def window(self, loss: Tensor) -> int:
        """How many steps' losses are checked together: 1 on the CPU, else ``accelerator_window``."""
        return 1 if loss.device.type == "cpu" else self.accelerator_window

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if epoch_ends(trainer, batch_idx):
            self.check(trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer.current_epoch)  # an epoch cut short where the check above did not see it coming

    def check(self, epoch: int) -> None:
        """Raise :class:`NonFiniteLossError` for the first non-finite loss kept since the last check."""
        unchecked, self._unchecked = self._unchecked, []
        if not unchecked:
            return
        losses = torch.stack([loss for _, _, loss in unchecked])
        finite = torch.isfinite(losses)
        if bool(finite.all()):  # the one host sync
            return
        first = int((~finite).nonzero()[0])
        step, batch_index, _ = unchecked[first]
        raise NonFiniteLossError(
            f"The {self.loss_name} loss became {float(losses[first])} at epoch {epoch}, step {step} "
            f"(batch {batch_index}). Training stopped; the last good checkpoint is kept. Common causes: a "
            f"learning rate too high for this loss (optimizer.lr={self.learning_rate}), or targets "
            f"the loss does not expect."
        )
