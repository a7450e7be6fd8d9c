"""The Lightning side of tracking: every epoch's train/val metrics into the run, and where it trained.

A module of its own because it imports Lightning: `import lossforge.tracking` stays light for
`lossforge compare` and the sweep callback in the launcher process.
"""

from __future__ import annotations

import lightning as L
import torch

from lossforge.tracking.runs import RunHandle


class EpochMetricsToMlflow(L.Callback):
    """Log every epoch's train/val metrics to MLflow with the epoch's number as the step, and tag the run with
    the device it trains on (`lossforge.device`): timings of runs only compare on the same device.

    Epochs are numbered from 1, as the terminal's epoch lines (`lossforge.training.progress`) number them:
    step 3 in MLflow is the line `epoch  3/20` (Lightning's 0-based `current_epoch` 2).

    Args:
        run: the MLflow run (rank 0's; other DDP ranks get no such callback).
        logged_through_epoch: the number (1-based, the step) of the last epoch a resumed run already logged;
            it is not logged twice.
    """

    def __init__(self, run: RunHandle, *, logged_through_epoch: int = -1) -> None:
        self.run = run
        self.logged_through_epoch = logged_through_epoch

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.run.set_tags({"lossforge.device": describe_device(trainer)})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs validation before this hook, so train/* and val/* of the epoch are both here.
        metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(("train/", "val/")) and value.numel() == 1
        }
        number = epoch_number(trainer.current_epoch)
        if metrics and trainer.is_global_zero and number > self.logged_through_epoch:
            self.run.log_metrics(metrics, step=number)


def epoch_number(current_epoch: int) -> int:
    """The number lossforge shows for Lightning's 0-based `current_epoch`: 1 for the first epoch, in the
    terminal and as MLflow's step alike.

    Examples:
        >>> epoch_number(0)
        1
    """
    return current_epoch + 1


def describe_device(trainer: L.Trainer) -> str:
    """Where `trainer` trains: `cuda: NVIDIA H100 80GB HBM3 (1 process)`, `cpu: 2 threads (2 processes)`."""
    device = trainer.strategy.root_device
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    processes = trainer.world_size
    return f"{device.type}: {what} ({processes} process{'es' if processes > 1 else ''})"
