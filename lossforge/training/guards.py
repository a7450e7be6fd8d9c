"""Guards on what a loss returns: one number per batch
([check_reduced_loss][lossforge.training.guards.check_reduced_loss]), finite
([FiniteLossGuard][lossforge.training.guards.FiniteLossGuard]), and not exploding
([ExplodingLossGuard][lossforge.training.guards.ExplodingLossGuard]) — each stops the run with a message that names the
loss."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor

from lossforge.training.epoch_means import epoch_ends


class LossShapeError(ValueError):
    """A loss returned something other than one number for the batch; the message names the loss and its package."""


def check_reduced_loss(value: object, *, loss: object) -> None:
    """Raise [LossShapeError][lossforge.training.guards.LossShapeError] unless `value` — what the loss returned for a
    batch, reduced — is a 0-d tensor. Reads only the shape, never the value: no host-device sync on a GPU.

    Autograd's own message for a per-sample loss ("grad can be implicitly created only for scalar outputs")
    names neither the loss nor who wrote it; this one names both.

    ```pycon
    >>> import torch
    >>> from lossforge.registry import LOSSES
    >>> l1 = LOSSES.build("l1")
    >>> check_reduced_loss(torch.tensor(1.0), loss=l1)
    >>> check_reduced_loss(torch.ones(4), loss=l1)
    Traceback (most recent call last):
    ...
    lossforge.training.guards.LossShapeError: loss 'l1' (package lossforge==...) returned a tensor of shape (4,) ...

    ```
    """
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) == 0:
        return
    got = f"a tensor of shape {tuple(shape)}" if shape is not None else f"a {type(value).__name__}"
    name, provider = registered_as(loss)
    raise LossShapeError(
        f"loss {name!r} (package {provider}) returned {got} for a batch; lossforge expects one "
        f"number (a 0-d tensor). Its reduction ('mean' or 'sum') must reduce over the batch — reduction='none' "
        f"is for per-sample values, never for training. Report it to the loss's authors; `lossforge check` runs "
        f"the contract kit on it."
    )


def registered_as(loss: object) -> tuple[str, str]:
    """The registry name and `package==version` of a loss object — looked up by its class, only when a message
    needs them — or its class name and `?` for a loss built outside the registry."""
    from lossforge.registry import LOSSES

    for name in LOSSES.names():
        component = LOSSES.info(name)
        if component.loaded is not None and component.loaded is type(loss):
            return name, component.provider
    return type(loss).__name__, "?"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the loss, epoch and step."""

    outcome = "diverged"  #: the run's ``lossforge.outcome`` (docs/decisions.md §2): an outcome of the loss


class FiniteLossGuard(L.Callback):
    """Check every training loss for NaN/inf before it is backpropagated or checkpointed.

    Reading a value back from a GPU waits for every queued kernel (a stall per step), so on an
    accelerator the losses are kept, unread, and checked together every `trainer.log_every_n_steps`
    steps and at the epoch's end — before validation and checkpointing, so the kept checkpoint is still
    good. On the CPU reading is free: every step is checked before its backward pass.

    Args:
        loss_name: the loss, for the message.
        learning_rate: the optimizer's learning rate, for the message (a common cause).
        accelerator_window: how many steps' losses are checked together off the CPU (the trainer's
            `log_every_n_steps`, whose default is 50).
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
        """How many steps' losses are checked together: 1 on the CPU, else `accelerator_window`."""
        return 1 if loss.device.type == "cpu" else self.accelerator_window

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if epoch_ends(trainer, batch_idx):
            self.check(trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer.current_epoch)  # an epoch cut short where the check above did not see it coming

    def check(self, epoch: int) -> None:
        """Raise [NonFiniteLossError][lossforge.training.guards.NonFiniteLossError] for the first non-finite loss kept
        since the last check."""
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
            f"The {self.loss_name} loss became {float(losses[first])} at epoch {epoch + 1}, step {step} "
            f"(batch {batch_index}). Training stopped; the last good checkpoint is kept. Common causes: a "
            f"learning rate too high for this loss (optimizer.lr={self.learning_rate}), or targets "
            f"the loss does not expect."
        )


class LossExplodedError(FloatingPointError):
    """The training loss grew far beyond its scale at the start of training; the message names the loss,
    the epochs and the learning rate."""

    outcome = "diverged"  #: the run's ``lossforge.outcome`` (docs/decisions.md §2): an outcome of the loss


class ExplodingLossGuard(L.Callback):
    r"""Stop a run whose training loss explodes while staying finite (`optimizer.lr=1e30` trains to a loss of
    5e31 and would otherwise end as a success) — the sibling of
    [FiniteLossGuard][lossforge.training.guards.FiniteLossGuard].

    Judged by growth, never by an absolute threshold (unscaled regression targets make a large loss normal):
    the reference is the loss of the first training step, the model's loss at initialisation on this data,
    before any update could have moved it. An epoch *explodes* when its mean training loss (in absolute value)
    exceeds `factor` × that reference:

    $$
    \text{explodes}_e = \Big|\frac{1}{B_e}\sum_{b} \ell_{e,b}\Big| > \text{factor} \cdot |\ell_{0,0}|
    $$

    and the run stops after `patience` exploding epochs in a row, or at once when an epoch's mean is no longer
    finite. One host read per epoch (the mean), none per step. The reference and the count survive a resume
    (they are in the checkpoint). A reference of exactly 0 waits for the first non-zero step.

    Args:
        loss_name: the loss, for the message.
        learning_rate: the optimizer's learning rate, for the message (the usual cause).
        factor: how many times its initial size the loss may grow.
        patience: exploding epochs in a row that stop the run.
    """

    def __init__(self, *, loss_name: str, learning_rate: float, factor: float = 1e3, patience: int = 2) -> None:
        self.loss_name, self.learning_rate = loss_name, learning_rate
        self.factor, self.patience = factor, max(1, patience)
        self.reference: float | None = None  # |loss| of the first training step
        self.exploding_epochs = 0
        self._first: Tensor | None = None  # the first step's loss, read once at the first epoch's end
        self._sum: Tensor | None = None
        self._count = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sum, self._count = None, 0

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        value = loss.detach()
        if self.reference is None and self._first is None:
            self._first = value
        self._sum = value if self._sum is None else self._sum + value
        self._count += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._sum is None or self._count == 0:
            return
        if self.reference is None and self._first is not None:
            first = abs(float(self._first))
            self._first = None
            if first > 0:
                self.reference = first
        mean = float(self._sum) / self._count  # the one host read of the epoch
        epoch = trainer.current_epoch
        if not math.isfinite(mean):
            self._stop(epoch, mean, f"became {mean}")
        if self.reference is None:
            return
        if abs(mean) > self.factor * self.reference:
            self.exploding_epochs += 1
        else:
            self.exploding_epochs = 0
        if self.exploding_epochs >= self.patience:
            growth = abs(mean) / self.reference
            self._stop(epoch, mean, f"grew {growth:.3g}-fold over {self.exploding_epochs} epochs in a row")

    def _stop(self, epoch: int, mean: float, what: str) -> None:
        reference = "n/a" if self.reference is None else f"{self.reference:.4g}"
        raise LossExplodedError(
            f"The {self.loss_name} loss diverged: its mean training loss {what} (epoch {epoch + 1}: {mean:.4g}; "
            f"first step: {reference}; a run stops beyond {self.factor:g}× its first step's loss for "
            f"{self.patience} epochs in a row). Training stopped and the run is marked diverged; the checkpoints "
            f"written so far are kept. The usual cause is a learning rate too high for this loss "
            f"(optimizer.lr={self.learning_rate})."
        )

    def state_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "exploding_epochs": self.exploding_epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reference = state_dict.get("reference")
        self.exploding_epochs = int(state_dict.get("exploding_epochs", 0))
