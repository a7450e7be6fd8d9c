"""Checkpoints that a crash, a kill or a full disk cannot corrupt, and the best one chosen by the task's metric.

A run's `checkpoints/` folder holds:

* `last.ckpt` — the state at the end of **every** epoch; `resume=` continues from it.
* `best.ckpt` — the epoch with the best validation value of the task's selection metric
  (`TaskSpec.selection_metric`, logged as `val/<metric>`: `f1_macro`, `mae`, `map_at_r`), never
  `val/loss` — each loss's own objective is on its own scale. **This is the model that is tested.** A later
  epoch replaces it only when it is strictly better: ties keep the earlier epoch.
* `interrupted.ckpt` — written when Ctrl-C or SIGTERM arrives, usually in the middle of an epoch
  (`training.resume` says when it is used).

Every file is written atomically: into a temporary file in the same folder, flushed to the disk (`fsync`),
then renamed over the old one (`os.replace`, atomic within one file system). A crash or a full disk leaves the
previous file whole, never a truncated one. Why not Lightning's `ModelCheckpoint`: its `save_last` follows
the top-k saves (`last.ckpt` only when the monitored value improves), and on a local disk its write goes
through a temporary file elsewhere that is then copied over the checkpoint — not atomic, no fsync.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from lossforge.training import DiskFullError

LAST, BEST, INTERRUPTED = "last.ckpt", "best.ckpt", "interrupted.ckpt"
EPOCH_END_KEY = "lossforge_epoch_end"
"""Set in every checkpoint: True when it was written at the end of an epoch (a state a resume can continue from
exactly), False for one written mid-epoch (`interrupted.ckpt`)."""


class NoFiniteValidationError(FloatingPointError):
    """The selection metric was never finite on the validation split: there is no best epoch to test."""

    outcome = "diverged"  #: the run's ``lossforge.outcome`` (docs/decisions.md §2–§3), read by tracking.runs


def save_atomically(trainer: L.Trainer, path: Path) -> None:
    """Write `trainer`'s full checkpoint to `path` atomically (temporary file, fsync, rename).

    Every DDP process calls it (Lightning's `save_checkpoint` writes on rank 0 and waits for all); rank 0
    renames. A full disk raises [DiskFullError][lossforge.training.DiskFullError] naming the file and the disk, with
    the temporary file removed and `path`'s previous version untouched.
    """
    temporary = path.with_name(f".{path.name}.partial")
    try:
        trainer.save_checkpoint(temporary, weights_only=False)
        if trainer.is_global_zero:
            _fsync(temporary)
            os.replace(temporary, path)
            _fsync(path.parent)
    except OSError as error:
        if trainer.is_global_zero:
            temporary.unlink(missing_ok=True)  # frees what the failed write took
        if error.errno == errno.ENOSPC:
            raise disk_full(path, error) from error
        raise
    trainer.strategy.barrier("lossforge.save_atomically")  # DDP: every process sees the renamed file


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def disk_full(path: Path, error: OSError) -> DiskFullError:
    """One paragraph for a full disk: which file, which disk (and its free space), what is kept, what to do."""
    # Lightning writes through a temporary file in the system's temporary folder and copies it here: the full
    # disk is the one of these two with less space left (the error may name either file).
    folders = [path.parent] + ([Path(error.filename).parent] if error.filename else [])
    free = {folder: _free_space(folder) for folder in folders}
    directory = min(folders, key=lambda folder: free[folder] or (0, 0))
    usage = free[directory]
    space = "" if usage is None else f" ({usage[0]:.1f} MiB free of {usage[1]:.1f} MiB)"
    kept = sorted(p.name for p in path.parent.glob("*.ckpt")) if path.parent.is_dir() else []
    run_dir = path.parent.parent
    message = (
        f"The disk is full: writing {path} failed — no space left on the file system holding {directory}{space}. "
        f"The run stops and is marked FAILED; what it recorded before is kept (metrics and params in MLflow"
        + (f"; {', '.join(kept)} in {path.parent}, previous versions intact" if kept else "")
        + "). Free space there, or give the run's outputs another disk (hydra.run.dir=…), then continue it with "
        f"`python -m lossforge resume={run_dir}`."
    )
    full = DiskFullError(message)
    full.errno = errno.ENOSPC
    return full


def _free_space(folder: Path) -> tuple[float, float] | None:
    """Free and total MiB of the file system holding `folder` (None when it cannot be asked)."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    return usage.free / 2**20, usage.total / 2**20


class EpochCheckpoints(Checkpoint):
    """Write `best.ckpt` (when `monitor` strictly improves) and `last.ckpt` at the end of every epoch.

    A `Checkpoint`, so Lightning runs it after every other callback
    (the NaN guard has checked the epoch, the metrics are logged) and adds no checkpoint of its own. Its
    state — the best value and epoch — travels in the checkpoints, so a resumed run keeps its best.

    Args:
        directory: the run's `checkpoints/` folder.
        monitor: the validation metric that picks the best epoch, e.g. `val/f1_macro`.
        higher_is_better: whether a larger `monitor` is better.
    """

    def __init__(self, directory: Path, *, monitor: str, higher_is_better: bool) -> None:
        self.directory, self.monitor, self.higher_is_better = directory, monitor, higher_is_better
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.monitor_seen = False  # whether validation logged ``monitor`` at all (finite or not)
        self._at_epoch_end = False

    @property
    def best_path(self) -> Path | None:
        """`best.ckpt`, once an epoch had a finite `monitor`."""
        return None if self.best_epoch is None else self.directory / BEST

    def improves(self, value: float) -> bool:
        """Whether `value` beats the best so far: finite and strictly better (a tie keeps the earlier epoch).

        ```pycon
        >>> callback = EpochCheckpoints(Path("."), monitor="val/mae", higher_is_better=False)
        >>> callback.best_score = 0.5
        >>> [callback.improves(v) for v in (0.4, 0.5, 0.6, float("nan"))]
        [True, False, False, False]

        ```
        """
        if not math.isfinite(value):
            return False
        if self.best_score is None:
            return True
        return value > self.best_score if self.higher_is_better else value < self.best_score

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._at_epoch_end = True
        try:
            if value is not None:
                self.monitor_seen = True
                if self.improves(float(value)):
                    self.best_score, self.best_epoch = float(value), trainer.current_epoch
                    save_atomically(trainer, self.directory / BEST)
            save_atomically(trainer, self.directory / LAST)  # after the best: it carries the updated best
        finally:
            self._at_epoch_end = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[EPOCH_END_KEY] = self._at_epoch_end

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") == self.monitor:
            self.best_score, self.best_epoch = state_dict["best_score"], state_dict["best_epoch"]
            self.monitor_seen = self.monitor_seen or self.best_epoch is not None


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM, save `interrupted.ckpt` (atomically) before Lightning shuts down, and remember
    which one it was (`received`: `"SIGINT"`, `"SIGTERM"` or None) for the message and the exit status."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.received: str | None = None
        self.epoch: int | None = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt | SystemExit):  # SIGTERM arrives as SIGTERMException
            self.received = "SIGINT" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
            self.epoch = trainer.current_epoch
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                save_atomically(trainer, self.directory / INTERRUPTED)
            except OSError:
                pass  # a full disk must not hide the interruption; last.ckpt is intact
