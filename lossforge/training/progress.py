"""What a run shows on the terminal: one line per epoch, or — quiet — one line per run.

A run is verbose by default (`verbose: true` in `conf/config.yaml`); a multirun of several jobs is quiet
unless `verbose=true` is on its command line (`quiet_sweep`), so a sweep prints one line per run.
Lightning's own progress bar is off by default (`conf/trainer/default.yaml`); with
`trainer.enable_progress_bar=true` it is back and [EpochLines][lossforge.training.progress.EpochLines] stays silent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import cast

import lightning as L

from lossforge.tasks import TaskSpec


class EpochLines(L.Callback):
    """Print one line per epoch on global rank 0: the training loss, the validation loss, the task's
    selection metric and the epoch's wall time (training and validation), e.g.
    `epoch  3/20  train/loss 0.412  val/loss 0.398  val/f1_macro 0.912  (1.2 s)`.

    Silent when Lightning shows its own progress bar, so the terminal never gets both.

    Args:
        enabled: print at all (`cfg.verbose`); a quiet run prints only its summary line.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._epoch_started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates before this hook: the epoch's train/* and val/* are both in callback_metrics.
        if not self.enabled or not trainer.is_global_zero or trainer.progress_bar_callback is not None:
            return
        spec = cast(TaskSpec, pl_module.spec)  # LossTask's; nn.Module's __getattr__ types it loosely
        selection = f"val/{spec.selection_metric}"
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if value.numel() == 1}
        line = epoch_line(
            trainer.current_epoch,
            trainer.max_epochs,
            metrics,
            keys=("train/loss", "val/loss", selection),
            seconds=time.monotonic() - self._epoch_started,
        )
        print(line, flush=True)


def epoch_line(
    epoch: int, max_epochs: int | None, metrics: Mapping[str, float], *, keys: Iterable[str], seconds: float
) -> str:
    """One epoch as a line: `epoch` is 0-based (Lightning's `current_epoch`) and shown 1-based; a key
    missing from `metrics` (an epoch without validation) is left out.

    ```pycon
    >>> epoch_line(2, 20, {"train/loss": 0.4123, "val/loss": 0.3978}, keys=("train/loss", "val/loss"), seconds=1.23)
    'epoch  3/20  train/loss 0.412  val/loss 0.398  (1.2 s)'
    >>> epoch_line(0, -1, {"train/loss": 2.0}, keys=("train/loss", "val/mae"), seconds=0.04)
    'epoch 1  train/loss 2.000  (0.0 s)'

    ```
    """
    if max_epochs is not None and max_epochs > 0:
        width = len(str(max_epochs))
        counter = f"epoch {epoch + 1:>{width}}/{max_epochs}"
    else:  # max_epochs=-1: no end to show
        counter = f"epoch {epoch + 1}"
    shown = [f"{key} {format_number(metrics[key])}" for key in keys if key in metrics]
    return "  ".join([counter, *shown, f"({seconds:.1f} s)"])


def summary_line(run_name: str, metrics: Mapping[str, float], run_id: str) -> str:
    """A quiet run's summary: its name, its headline test metrics (`test/<metric>`, sorted; per-class
    metrics left out) and its MLflow run id.

    ```pycon
    >>> summary_line("focal-digits-seed0", {"test/loss": 0.11, "test/accuracy": 0.97, "test/f1/0": 0.9}, "ab12")
    'focal-digits-seed0: test/accuracy 0.970  test/loss 0.110  (run ab12)'

    ```
    """
    headline = sorted(key for key in metrics if key.count("/") == 1)
    shown = "  ".join(f"{key} {format_number(metrics[key])}" for key in headline)
    return f"{run_name}: {shown}  (run {run_id})"


def format_number(value: float) -> str:
    """Three decimals, which keep epoch lines aligned; scientific where they would hide the value.

    ```pycon
    >>> [format_number(v) for v in (0.41234, 1234.5, 0.0, 2.5e-05, float("nan"))]
    ['0.412', '1234.500', '0.000', '2.500e-05', 'nan']

    ```
    """
    if value == 0 or not math.isfinite(value) or 1e-3 <= abs(value) < 1e6:
        return f"{value:.3f}"
    return f"{value:.3e}"


def quiet_sweep(*, multirun: bool, several_jobs: bool, verbose_on_command_line: bool) -> bool:
    """Whether a run whose config says `verbose: true` prints only its summary line: so in a multirun of
    several jobs (their epoch lines would interleave into noise), unless `verbose` was set on the
    command line.

    ```pycon
    >>> quiet_sweep(multirun=True, several_jobs=True, verbose_on_command_line=False)
    True
    >>> quiet_sweep(multirun=True, several_jobs=True, verbose_on_command_line=True)
    False
    >>> quiet_sweep(multirun=True, several_jobs=False, verbose_on_command_line=False)
    False

    ```
    """
    return multirun and several_jobs and not verbose_on_command_line
