"""A tuning trial's job reports each epoch's validation score to its Optuna trial, and stops when pruned.

Two callers, one callback ([ReportToTrial][lossforge.training.pruning.ReportToTrial]):

- the comparison protocol (`lossforge.protocol.tuning`) trains a trial in its own process and lets the
  callback raise `optuna.TrialPruned` into `Study.optimize`;
- a Hydra sweep (`hydra/sweeper=optuna`, `hydra_plugins.lossforge_optuna`) launches each trial as an
  ordinary lossforge job, on any launcher. The sweeper puts where the trial lives into the job's overrides
  (`+tuning_trial.storage=…`, `study`, `trial_id`, `monitor` and the pruner's settings); the job opens
  the study's storage itself ([trial_of_job][lossforge.training.pruning.trial_of_job]), reports every epoch there, and,
  when the median pruner says so, marks its trial `PRUNED` in the storage and ends training early — the run itself
  finishes normally (tested on its best checkpoint), so a pruned trial is never mistaken for a failed run.

The storage is named as the user names it ([storage_url][lossforge.training.pruning.storage_url]): a path ending in
`.db` or a `sqlite:///` URL (SQLite), `postgresql://…` (any SQLAlchemy URL), or Optuna's journal file storage for
shared file systems without a database — `journal:<path>` or a path ending in `.log`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import optuna

log = logging.getLogger("lossforge.tuning")

TRIAL_KEY = "tuning_trial"
"""The config key under which a sweep job finds its trial (put there by the sweeper, popped before training)."""


def storage_url(text: str, *, base_dir: Path | None = None) -> str:
    """The canonical form of a storage the user named: an SQLAlchemy URL, or `journal:<absolute path>`.

    A relative path is taken relative to `base_dir` (the directory the command was started from).

    ```pycon
    >>> storage_url("outputs/tuning.db", base_dir=Path("/work"))
    'sqlite:////work/outputs/tuning.db'
    >>> storage_url("/shared/study.log")
    'journal:/shared/study.log'
    >>> storage_url("journal:runs/study.jsonl", base_dir=Path("/work"))
    'journal:/work/runs/study.jsonl'
    >>> storage_url("postgresql://lossforge@db.example.org/tuning")
    'postgresql://lossforge@db.example.org/tuning'

    ```
    """
    base = (base_dir or Path.cwd()).resolve()
    if text.startswith("journal:"):
        return "journal:" + str(base / Path(text[len("journal:") :]).expanduser())
    if "://" in text:
        return text
    path = base / Path(text).expanduser()
    if path.suffix == ".log":
        return f"journal:{path}"
    return f"sqlite:///{path}"


def open_storage(url: str, *, heartbeat: tuple[int, int] | None = None) -> optuna.storages.BaseStorage:
    """The Optuna storage behind a canonical `url` ([storage_url][lossforge.training.pruning.storage_url]); its schema
    must exist already (`lossforge.protocol.studies.prepare_storage` creates it once, before any worker starts).

    `heartbeat`: `(interval, grace period)` in seconds, for a database storage that several workers share:
    a trial whose worker stopped beating for the grace period is stale (a journal file has no heartbeat:
    ignored there).
    """
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len("journal:") :]))
    interval, grace = heartbeat or (None, None)
    return optuna.storages.RDBStorage(
        url,
        skip_compatibility_check=True,  # the schema was created or upgraded by prepare_storage,
        skip_table_creation=True,  # once, under its lock: a worker that created tables here would race
        heartbeat_interval=interval,
        grace_period=grace,
    )


class ReportToTrial(L.Callback):
    """Report each epoch's `monitor` (a validation metric) to `trial`; act when the pruner says so.

    Args:
        trial: the Optuna trial this training run is.
        monitor: the validation metric reported, e.g. `val/f1_macro`.
        stop: `False` (in-process tuning): raise `optuna.TrialPruned` out of `fit`. `True` (a
            sweep job): mark the trial `PRUNED` in its storage and stop training after this epoch.
    """

    def __init__(self, trial: optuna.Trial, monitor: str, *, stop: bool = False) -> None:
        self.trial = trial
        self.monitor = monitor
        self.stop = stop
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_at is not None or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):
            return  # the NaN guard decides what a non-finite score means; the pruner compares numbers
        epoch = trainer.current_epoch
        self.trial.report(value, step=epoch)
        if not self.trial.should_prune():
            return
        reason = f"epoch {epoch}: {self.monitor} = {value:.4f}"
        if not self.stop:
            raise optuna.TrialPruned(reason)
        self.pruned_at = epoch
        self.trial.study.tell(self.trial, state=optuna.trial.TrialState.PRUNED)
        log.info("prune    trial %d at %s: behind the median of earlier trials", self.trial.number, reason)
        trainer.should_stop = True


@dataclass(frozen=True)
class JobTrial:
    """Where a sweep job's trial lives, as the sweeper wrote it into the job's overrides."""

    storage: str  # a canonical storage URL (storage_url)
    study: str
    trial_id: int
    monitor: str
    n_startup_trials: int = 2
    n_warmup_steps: int = 1
    prune: bool = True  # False: every epoch is reported, no trial is stopped (hydra.sweeper.pruner=null)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> JobTrial:
        return cls(
            storage=str(values["storage"]),
            study=str(values["study"]),
            trial_id=int(values["trial_id"]),
            monitor=str(values["monitor"]),
            n_startup_trials=int(values.get("n_startup_trials", 2)),
            n_warmup_steps=int(values.get("n_warmup_steps", 1)),
            prune=bool(values.get("prune", True)),
        )


def median_pruner(n_startup_trials: int, n_warmup_steps: int) -> optuna.pruners.BasePruner:
    """The pruner of every lossforge study: a trial's epoch score below the median of the earlier trials'
    scores at the same epoch stops it, once `n_startup_trials` trials finished and after
    `n_warmup_steps` epochs."""
    return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)


def trial_of_job(values: Mapping[str, Any] | None) -> ReportToTrial | None:
    """The callback of a sweep job whose config carries `tuning_trial` (`None` for any other job)."""
    if not values:
        return None
    where = JobTrial.of(values)
    study = optuna.load_study(
        study_name=where.study,
        storage=open_storage(where.storage),
        pruner=median_pruner(where.n_startup_trials, where.n_warmup_steps)
        if where.prune
        else optuna.pruners.NopPruner(),
    )
    return ReportToTrial(optuna.trial.Trial(study, where.trial_id), where.monitor, stop=True)
