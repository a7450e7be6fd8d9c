"""A comparison's work, shared by any number of workers through the study storage.

The work of a comparison is, per entry, its tuning trials and then its seed runs. A worker (this process, a
process of `lossforge benchmark --workers N`, a SLURM job of `--launcher slurm`, or a second
`lossforge benchmark` started with the same name) repeatedly takes the next free piece — a trial of the first
entry whose study has none running, else a seed run of the first entry whose tuning is done — runs it, and
stops when nothing is left. Every piece is reserved under the storage's lock
([storage_lock][lossforge.protocol.studies.storage_lock]) as an Optuna trial with a heartbeat:

- a tuning trial in the entry's study `<comparison>/<entry>`; by default one at a time per study
  (`sequential`), each sampled by TPE seeded with the seed plus its number, so every trial sees every earlier
  one and the chosen configuration does not depend on how many workers ran it, or which;
- a seed run as a trial of the entry's seed ledger, the study `<comparison>/<entry> seeds`: its user
  attribute `seed`, its value the seed run's test score — so no seed is trained twice at once, and one whose
  worker died (its heartbeat stopped) is trained again; the earlier attempt's MLflow run is then marked
  killed and superseded (docs/decisions.md §2).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lossforge.hydra_options import compose
from lossforge.protocol.plan import Budget
from lossforge.protocol.studies import storage_lock
from lossforge.protocol.trials import (
    GRACE,
    HEARTBEAT,
    INTERRUPTED,
    Pace,
    Step,
    claim,
    heartbeat,
    run_one_trial,
    spent_trials,
)
from lossforge.protocol.tuning import EntryTuning
from lossforge.tracking import SweepJob, resolve_tracking_uri
from lossforge.tracking.runs import OUTCOME_TAG, Outcome
from lossforge.training.pruning import open_storage
from lossforge.training.run import train

log = logging.getLogger("lossforge.protocol")

STAGE = "lossforge.protocol.stage"
COMPARISON = "lossforge.comparison"
SUPERSEDED_TAG = "lossforge.superseded_by_resume"
"""The tag of a run taken out of the comparison because its seed was trained again (docs/decisions.md §2)."""


@dataclass(frozen=True)
class Job:
    """One entry's work: its overrides (the base experiment's and its own), its study and its MLflow run."""

    label: str
    overrides: tuple[str, ...]
    study_name: str
    study_run: str

    @property
    def ledger_name(self) -> str:
        """The study whose trials are this entry's seed runs."""
        return f"{self.study_name} seeds"


@dataclass(frozen=True)
class Plan:
    """What every worker of one comparison needs: it travels to worker processes and SLURM jobs (pickled).

    Attributes:
        name: the comparison's name.
        jobs: the entries' work, in order.
        budget: trials and seeds per entry.
        storage: the studies' storage, a canonical URL (prepared).
        monitor: the validation metric tuning maximizes or minimizes, e.g. `val/f1_macro`.
        metric: the test metric of the verdict, e.g. `test/f1_macro` (the seed ledger's values).
        maximize: whether higher is better.
        pruner: the median pruner on; `seed`: the sampler's seed; `class_folds`: see `tune`.
        experiment_id: the MLflow experiment of the comparison's runs.
        base_dir: where the command started (the MLflow store and the outputs are under it).
        sequential: one trial at a time per study (reproducible whatever the number of workers); `False`: a
            study's trials may run in parallel (SLURM jobs), and TPE's choices then depend on timing.
    """

    name: str
    jobs: tuple[Job, ...]
    budget: Budget
    storage: str
    monitor: str
    metric: str
    maximize: bool
    pruner: bool
    seed: int
    class_folds: tuple[tuple[int, ...], ...]
    experiment_id: str
    base_dir: Path
    sequential: bool = True

    @property
    def heartbeat(self) -> int | None:
        """The heartbeat interval of running trials; `None`: a journal file, which has none."""
        return None if self.storage.startswith("journal:") else HEARTBEAT


@dataclass
class Progress:
    """Where one entry stands, read from the storage ([progress][lossforge.protocol.work.progress])."""

    label: str
    trials: int
    trial_budget: int
    pruned: int
    failed: int
    best: float | None
    seeds: int
    seed_budget: int
    running: int = 0

    @property
    def done(self) -> bool:
        return self.trials >= self.trial_budget and (self.seeds >= self.seed_budget or self.untrainable)

    @property
    def untrainable(self) -> bool:
        """Every trial failed: no seed run will train."""
        return self.trials >= self.trial_budget and self.best is None

    def line(self) -> str:
        """`focal: 20/20 trials and 10/10 seeds`."""
        return f"{self.label}: {self.trials}/{self.trial_budget} trials and {self.seeds}/{self.seed_budget} seeds"


def open_tuning(job: Job, plan: Plan, cfg: DictConfig | None = None, *, warn: bool = True) -> EntryTuning:
    """The entry's study, opened (or created) with the plan's budget, storage, monitor, pruner and seed;
    `cfg`: the job's composed config (composed here when not given)."""
    return EntryTuning.open(
        compose(list(job.overrides)) if cfg is None else cfg,
        label=job.label,
        budget=plan.budget,
        storage=plan.storage,
        study_name=job.study_name,
        monitor=plan.monitor,
        maximize=plan.maximize,
        pruner=plan.pruner,
        seed=plan.seed,
        class_folds=plan.class_folds,
        warn=warn,
    )


def open_ledger(job: Job, plan: Plan) -> optuna.Study:
    """The entry's seed ledger (created if new)."""
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = open_storage(plan.storage, heartbeat=(HEARTBEAT, GRACE) if plan.heartbeat else None)
    return optuna.create_study(
        storage=storage,
        study_name=job.ledger_name,
        direction="maximize" if plan.maximize else "minimize",
        load_if_exists=True,
    )


def progress(job: Job, plan: Plan, study: optuna.Study, ledger: optuna.Study) -> Progress:
    """How far the entry's tuning and seed runs are, from the storage alone (any process may ask)."""
    spent = spent_trials(study)
    states = [trial.state for trial in spent]
    complete = [t.value for t in spent if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    best = (max if plan.maximize else min)(complete) if complete else None
    running = [
        trial
        for trial in (*study.get_trials(deepcopy=False), *ledger.get_trials(deepcopy=False))
        if trial.state == optuna.trial.TrialState.RUNNING and not trial.user_attrs.get(INTERRUPTED)
    ]
    return Progress(
        job.label,
        trials=len(spent),
        trial_budget=plan.budget.trials,
        pruned=states.count(optuna.trial.TrialState.PRUNED),
        failed=states.count(optuna.trial.TrialState.FAIL),
        best=best,
        seeds=len(seeds_taken(ledger, running=False)),
        seed_budget=plan.budget.seeds,
        running=len(running),
    )


def seeds_taken(ledger: optuna.Study, *, running: bool) -> set[int]:
    """The seeds the ledger holds as trained (complete, or failed as an outcome of the run) — and, with
    `running`, those a live worker trains now."""
    states: tuple[optuna.trial.TrialState, ...] = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    if running:
        states += (optuna.trial.TrialState.RUNNING,)
    return {
        int(trial.user_attrs["seed"])
        for trial in ledger.get_trials(deepcopy=False, states=states)
        if "seed" in trial.user_attrs and not trial.user_attrs.get(INTERRUPTED)
    }


def reserve_seed(
    ledger: optuna.Study, seeds: int, *, storage: str, finished: set[int]
) -> tuple[optuna.Trial, int] | bool:
    """The lowest seed that is neither trained nor being trained, reserved as a new trial of the ledger under
    the storage's lock; else whether a seed is still being trained elsewhere (`True`) or all are (`False`).
    `finished`: seeds whose MLflow run finished (a comparison begun before the ledger existed)."""
    from lossforge.protocol.trials import close_stale

    with storage_lock(storage):
        close_stale(ledger)
        taken = seeds_taken(ledger, running=True) | finished
        free = [seed for seed in range(seeds) if seed not in taken]
        if not free:
            return bool(taken - seeds_taken(ledger, running=False) - finished)
        with warnings.catch_warnings():  # the worker beats the heart itself (tuning.heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            trial = ledger.ask()
        trial.set_user_attr("seed", free[0])
        claim(trial)
        return trial, free[0]


@dataclass
class EntryWorker:
    """One entry, as a worker sees it: its study and ledger open, its tuned configuration once known."""

    job: Job
    plan: Plan
    tuning: EntryTuning
    ledger: optuna.Study
    cfg: DictConfig
    best: DictConfig | None = None
    untrainable: bool = False  # every tuning trial failed
    pace: Pace = field(default_factory=Pace)

    @classmethod
    def open(cls, job: Job, plan: Plan) -> EntryWorker:
        cfg = compose(list(job.overrides))
        tuning = open_tuning(job, plan, cfg, warn=False)  # the command warned, once
        return cls(job, plan, tuning, open_ledger(job, plan), cfg)

    def tune_step(self) -> Step:
        """Run one tuning trial of this entry; or say why not (its running trial is another worker's: `BUSY`;
        its tuning is done: `DONE`, with the tuned configuration now known)."""
        if self.best is not None or self.untrainable:
            return Step.DONE
        step = run_one_trial(
            self.tuning.study,
            self.tuning.objective,
            self.plan.budget.trials,
            storage=self.plan.storage,
            heartbeat_interval=self.plan.heartbeat,
            sequential=self.plan.sequential,
            sampler=self.tuning.sampler,
            pace=self.pace,
        )
        if step is not Step.DONE:
            return step
        tuned = self.tuning.tuned()
        if tuned.failed:  # every trial failed: nothing to retrain
            self.untrainable = True
            return Step.DONE
        self.best = copy.deepcopy(self.cfg)
        for key, value in tuned.best_params.items():
            OmegaConf.update(self.best, key, value, merge=False)
        return Step.DONE

    def seed_step(self) -> Step:
        """Run one seed run of this entry's tuned configuration; or say why not (its tuning or its last seed
        runs are another worker's: `BUSY`; nothing is left: `DONE`)."""
        if self.untrainable:
            return Step.DONE
        if self.best is None:  # its tuning's last trial runs in another worker
            return Step.BUSY
        return self._seed_step()

    def _seed_step(self) -> Step:
        assert self.best is not None
        client = MlflowClient(resolve_tracking_uri(self.cfg.logger.get("tracking_uri"), base_dir=self.plan.base_dir))
        finished = set(finished_seed_runs(client, self.plan.experiment_id, self.job.study_run))
        claim = reserve_seed(self.ledger, self.plan.budget.seeds, storage=self.plan.storage, finished=finished)
        if claim is True:
            return Step.BUSY
        if claim is False:
            return Step.DONE
        assert isinstance(claim, tuple)
        trial, seed = claim
        with heartbeat(self.ledger, trial, interval=self.plan.heartbeat):
            try:
                metrics = train_seed(self.best, self.job, seed, plan=self.plan)
            except Exception as error:  # the run's outcome (diverged, failed) is recorded on it: the others go on
                log.warning("final    %s seed %d failed: %s", self.job.label, seed, error)
                trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
                _tell(self.ledger, trial, state=optuna.trial.TrialState.FAIL)
                return Step.RAN
            value = metrics.get(self.plan.metric)
            if value is not None and math.isfinite(value):
                _tell(self.ledger, trial, values=value)
            else:
                _tell(self.ledger, trial, state=optuna.trial.TrialState.FAIL)
        supersede_attempts(client, self.plan.experiment_id, self.job.study_run, seed)
        done = len(seeds_taken(self.ledger, running=False))
        log.info("final    %s seed %d finished; %d/%d seeds", self.job.label, seed, done, self.plan.budget.seeds)
        return Step.RAN


def _tell(study: optuna.Study, trial: optuna.Trial, **outcome: Any) -> None:
    try:
        study.tell(trial, **outcome)
    except optuna.exceptions.UpdateFinishedTrialError:  # its heartbeat was taken for stopped: run again elsewhere
        log.warning("tune     %s: trial %d was taken over by another worker", study.study_name, trial.number)


def work(plan: Plan, *, poll_s: float = 0.5, alive: Callable[[], bool] | None = None) -> int:
    """Take and run the comparison's pieces until none is left; return how many this worker ran.

    Tuning trials come first, in every entry, and seed runs fill the gaps: a study's trials run one after
    another, so the studies set the comparison's pace, while the seed runs of the entries already tuned can go
    to whichever worker is free. A worker waits (polling every `poll_s`) while the only pieces left run in
    other workers: their results decide what comes next (a seed run needs its entry's tuning done), and if
    their worker died, this worker runs them again. Without heartbeats (a journal file) it does not wait.

    `alive` says whether the command that started this worker still runs: a worker whose command was killed
    takes no further piece (its watchdog ends it a moment later), so it cannot take over — and report to a
    closed terminal — the pieces the command's own process left.
    """
    entries = [EntryWorker.open(job, plan) for job in plan.jobs]
    ran = 0
    while alive is None or alive():
        busy = False
        for step_of in (EntryWorker.tune_step, EntryWorker.seed_step):
            steps = (step_of(entry) for entry in entries)
            for step in steps:
                busy = busy or step is Step.BUSY
                if step is Step.RAN:
                    ran += 1
                    break
            else:
                continue
            break  # a piece ran: look again from the first tuning trial
        else:
            if not busy or plan.heartbeat is None:
                return ran
            time.sleep(poll_s)
    return ran


def train_seed(cfg: DictConfig, job: Job, seed: int, *, plan: Plan) -> dict[str, float]:
    """Retrain the entry's best configuration with `seed` as a full run under its study, tested once."""
    run_cfg = copy.deepcopy(cfg)
    run_cfg.seed = seed
    run_cfg.run_name = f"{job.label} seed {seed}"
    run_cfg.trainer.enable_progress_bar = False
    output_dir = plan.base_dir / "outputs" / "benchmark" / directory_name(plan.name) / job.label / f"seed-{seed}"
    sweep_job = SweepJob(sweep_dir=str(output_dir.parent), job_num=seed, overrides=(), parent_run_id=job.study_run)
    tags = {COMPARISON: plan.name, STAGE: "final", "entry": job.label, "lossforge.protocol.seed": str(seed)}
    log.info("final    %s seed %d (worker %d)", job.label, seed, os.getpid())
    return train(run_cfg, base_dir=plan.base_dir, output_dir=output_dir, sweep_job=sweep_job, tags=tags, summary=False)


def directory_name(name: str, limit: int = 120) -> str:
    """The comparison's directory: `name` with path-unsafe characters replaced; a name longer than
    `limit` (a comparison of many losses) is cut and ends with a hash of the whole, so it stays unique
    and within a file system's 255-byte name limit.

    ```pycon
    >>> directory_name("digits:l1,l2:20x10")
    'digits_l1_l2_20x10'
    >>> name = directory_name("digits:" + ",".join(f"loss_{i}" for i in range(60)))
    >>> len(name), name[:20]
    (120, 'digits_loss_0_loss_1')

    ```
    """
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{safe[: limit - len(digest) - 1]}-{digest}"


def seed_runs(client: MlflowClient, experiment_id: str, study_run: str) -> list[Any]:
    """The seed runs (MLflow runs) of a study, newest first."""
    return client.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{study_run}' and tags.`{STAGE}` = 'final'",
        order_by=["start_time DESC"],
    )


def finished_seed_runs(client: MlflowClient, experiment_id: str, study_run: str) -> dict[int, dict[str, float]]:
    """The seed runs of a study that already finished: seed → metrics (a resumed comparison does not train
    them again)."""
    finished: dict[int, dict[str, float]] = {}
    for run in seed_runs(client, experiment_id, study_run):
        seed = int(run.data.tags["lossforge.protocol.seed"])
        if run.info.status == "FINISHED" and seed not in finished:
            finished[seed] = dict(run.data.metrics)
    return finished


def supersede_attempts(client: MlflowClient, experiment_id: str, study_run: str, seed: int) -> list[str]:
    """Take the earlier attempts of a seed run that has now finished out of the comparison: every other run
    of that seed (one whose worker died while it was RUNNING is marked killed first) is tagged superseded and
    moved to MLflow's deleted runs, from which `MlflowClient().restore_run(run_id)` brings it back. Returns
    their ids."""
    runs = seed_runs(client, experiment_id, study_run)  # newest first
    attempts = [run for run in runs if run.data.tags.get("lossforge.protocol.seed") == str(seed)]
    kept = next((run for run in attempts if run.info.status == "FINISHED"), None)
    if kept is None:
        return []
    superseded = []
    for run in attempts:
        if run is kept:
            continue
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, OUTCOME_TAG, Outcome.KILLED.value)
            client.set_terminated(run.info.run_id, status="KILLED")
        client.set_tag(run.info.run_id, SUPERSEDED_TAG, f"seed {seed} trained again: run {kept.info.run_id}")
        client.set_tag(run.info.run_id, OUTCOME_TAG, Outcome.SUPERSEDED.value)
        client.delete_run(run.info.run_id)
        log.info("final    earlier attempt %s of seed %d superseded by %s", run.info.run_id, seed, kept.info.run_id)
        superseded.append(run.info.run_id)
    return superseded


def entry_progress(plan: Plan) -> list[Progress]:
    """Every entry's progress, read from the storage."""
    found = []
    for job in plan.jobs:
        storage = open_storage(plan.storage)
        study = optuna.load_study(study_name=job.study_name, storage=storage)
        found.append(progress(job, plan, study, open_ledger(job, plan)))
    return found


def usable_cores() -> int:
    """The cores this process may run on — its CPU affinity (a SLURM allocation, `taskset`), else all — as
    the parallel launcher counts them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int) -> int:
    """Torch threads for each of `workers` processes on `cores` cores: an equal share, at least one.

    ```pycon
    >>> threads_per_worker(2, 2), threads_per_worker(3, 16), threads_per_worker(4, 2)
    (1, 5, 1)

    ```
    """
    return max(1, cores // workers)
