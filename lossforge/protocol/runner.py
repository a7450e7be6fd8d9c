"""The whole protocol: tune every entry alike, retrain the best of each with K seeds, test once, judge.

MLflow run tree (experiment `cfg.logger.experiment`):

    comparison <name>                       tags lossforge.comparison=<name>, lossforge.protocol.stage=comparison
    ├── study <entry>                       trials table (trials.csv / trials.md), best parameters, best val score
    │   ├── <entry> seed 0                  a full lossforge run: config, per-epoch metrics, test metrics, plots
    │   └── <entry> seed 1 …
    └── study <entry> …

The verdict table (markdown, CSV, JSON) and its plot are logged on the comparison run, with each entry's
mean and CI as metrics there, by `lossforge compare <comparison run>` — the same command rebuilds them
from the store at any time. Re-running the same command resumes: finished studies and seed runs are
reused, a study killed midway continues with the trials it had.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from omegaconf import DictConfig

from lossforge.components import list_losses
from lossforge.contract import Task, loss_traits, training_task
from lossforge.evaluation.compare.report import ComparisonReport
from lossforge.evaluation.compare.sweep import compare
from lossforge.evaluation.statistics.verdicts import VerdictRow
from lossforge.hydra_options import compose
from lossforge.protocol.launch import LocalWorkers, describe, run_workers
from lossforge.protocol.plan import BUDGETS, Budget, Entry
from lossforge.protocol.progress import ProgressBoard
from lossforge.protocol.studies import prepare_storage, storage_lock
from lossforge.protocol.trials import remaining_trials
from lossforge.protocol.tuning import EntryTuning, Tuned
from lossforge.protocol.work import (
    COMPARISON,
    STAGE,
    Job,
    Plan,
    directory_name,
    entry_progress,
    finished_seed_runs,
    open_ledger,
    open_tuning,
)
from lossforge.registry import LOSSES
from lossforge.tasks import spec_for
from lossforge.tracking import (
    check_reachable,
    default_artifact_location,
    get_or_create_experiment,
    redact_uri,
    resolve_tracking_uri,
)
from lossforge.training.build import build_data
from lossforge.training.pruning import storage_url

log = logging.getLogger("lossforge.protocol")

__all__ = ["COMPARISON", "STAGE", "Comparison", "Outcome", "Settings", "directory_name", "run_protocol"]


@dataclass(frozen=True)
class Settings:
    """One comparison.

    Attributes:
        overrides: Hydra overrides of the base experiment every entry shares (`dataset=…`, `model=…`).
        entries: the contestants; empty: every registered loss that declares the dataset's task.
        budget: trials and seeds per entry (and epochs per run).
        baseline: the entry every other is judged against; `None`: the task's baseline
            (`TaskSpec.baseline`: `l2`, `cross_entropy`, `bce`, `contrastive+semihard_triplets`) if it
            takes part, else the first entry.
        name: names the comparison in MLflow and its studies in Optuna; the same name resumes it.
            `None`: derived from the dataset, the entries and the budget.
        pruner: stop poor trials early (a median pruner on each epoch's validation score).
        seed: the tuning sampler's seed.
        class_folds: metric learning: tune with k folds over class partitions of the training classes
            (each fold's classes are a class-disjoint validation split; a trial scores their mean). 0 or 1:
            one class-disjoint validation split.
        storage: the Optuna storage of the studies (`lossforge.training.pruning.storage_url`: a path,
            an SQLAlchemy URL such as `postgresql://…`, or `journal:<path>`); `None`:
            `outputs/tuning.db`.
        workers: how many workers share the comparison (`lossforge.protocol.launch`); 1: this process alone.
        launcher: `local` (worker processes on this machine) or `slurm` (SLURM jobs).
        threads: torch threads per worker process; `None`: the usable cores ÷ `workers` (local), the
            job's `cpus_per_task` (SLURM).
        slurm: submitit's SLURM parameters for `launcher="slurm"` (`partition`, `timeout_min`, …).
        progress_bar: draw a progress bar per entry instead of a line per finished trial (a terminal).
    """

    overrides: tuple[str, ...] = ()
    entries: tuple[Entry, ...] = ()
    budget: Budget = BUDGETS["default"]
    baseline: str | None = None
    name: str | None = None
    pruner: bool = True
    seed: int = 0
    class_folds: int = 0
    storage: str | None = None
    workers: int = 1
    launcher: str = "local"
    threads: int | None = None
    slurm: tuple[tuple[str, Any], ...] = ()
    progress_bar: bool = False


@dataclass
class Outcome:
    """One entry's result: its study, its seed runs' metrics (seed → metrics), and why it failed, if it did."""

    entry: Entry
    study_run_id: str
    tuned: Tuned
    by_seed: dict[int, dict[str, float]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Comparison:
    """The protocol's result."""

    name: str
    run_id: str
    tracking_uri: str
    task: Task
    metric: str  # the test metric the verdict is on, e.g. "test/f1_macro"
    baseline: str
    outcomes: list[Outcome]
    tables: dict[str, list[VerdictRow]]  # metric → the verdict table (the selection metric first)
    failed: list[dict[str, Any]]  # entries whose every trial failed
    report: str  # what `lossforge compare <run_id>` printed when it logged the verdict on the run
    seconds: float
    experiment_id: str = ""  # the MLflow experiment of `run_id` (a tracking server's run page needs it)


def run_protocol(settings: Settings, *, base_dir: Path) -> Comparison:
    """Run (or resume) the comparison `settings` describes; log it to MLflow; return its verdict."""
    started = time.monotonic()
    early = None  # the local workers, importing while this process prepares the comparison
    if settings.launcher == "local" and settings.workers > 1:
        early = LocalWorkers(settings.workers, threads=settings.threads, quiet=settings.progress_bar)
    with early or contextlib.nullcontext():
        return _run(settings, base_dir=base_dir, started=started, early=early)


def _run(settings: Settings, *, base_dir: Path, started: float, early: LocalWorkers | None) -> Comparison:
    budget = settings.budget
    base_overrides = [*settings.overrides]
    if budget.max_epochs is not None:
        base_overrides.append(f"trainer.max_epochs={budget.max_epochs}")
    base = compose(base_overrides)
    dataset = build_data(base.dataset)  # the split seed, fixed for every trial and seed run (decisions.md §1)
    entries = list(settings.entries) or [Entry(name) for name in list_losses(task=dataset.task)]
    if not entries:
        raise ValueError(f"No loss declares the {dataset.task} task of dataset {dataset.name!r}: nothing to compare.")
    task = _common_task(entries, dataset.task, dataset.name)
    spec = spec_for(task)
    held_out, folds = _open_set(
        base,
        dataset.num_outputs,
        embedding=spec.embedding,
        class_folds=settings.class_folds,
        disjoint=dataset.class_disjoint,
    )
    base_overrides += held_out
    monitor, metric = f"val/{spec.selection_metric}", f"test/{spec.selection_metric}"
    labels = [entry.label for entry in entries]
    baseline = settings.baseline or (spec.baseline if spec.baseline in labels else labels[0])
    if baseline not in labels:
        raise ValueError(f"Baseline {baseline!r} is not one of the entries: {', '.join(labels)}.")
    name = settings.name or _default_name(dataset.name, labels, budget, settings.overrides)

    tracking_uri = resolve_tracking_uri(base.logger.get("tracking_uri"), base_dir=base_dir)
    check_reachable(tracking_uri)
    client = MlflowClient(tracking_uri)
    location = default_artifact_location(base.logger.get("artifact_location"), tracking_uri, base_dir)
    experiment_id = get_or_create_experiment(client, base.logger.experiment, location)
    storage = prepare_storage(storage_url(settings.storage or "outputs/tuning.db", base_dir=base_dir))
    with storage_lock(storage):  # a second command of the same name joins this comparison rather than copy it
        parent = _find_or_create(
            client,
            experiment_id,
            {COMPARISON: name, STAGE: "comparison"},
            run_name=f"comparison {name}"[:250],
            tags={"dataset": dataset.name, "task": str(task), "lossforge.protocol.metric": metric},
        )
        jobs = [
            _job(entry, base_overrides, name=name, client=client, experiment_id=experiment_id, parent=parent)
            for entry in entries
        ]
    epochs = budget.max_epochs or base.trainer.max_epochs
    log.info(
        "compare  %s on %s: %d trials and %d seeds each, %d epochs a run",
        ", ".join(labels),
        dataset.name,
        budget.trials,
        budget.seeds,
        epochs,
    )
    log.info("mlflow   comparison %r, run %s in %s", name, parent, redact_uri(tracking_uri))
    client.update_run(parent, status="RUNNING")
    if not client.get_run(parent).data.params:  # a new comparison: what it was asked to do
        _log_settings(client, parent, settings, labels, baseline, monitor)
    plan = Plan(
        name=name,
        jobs=tuple(jobs),
        budget=budget,
        storage=storage,
        monitor=monitor,
        metric=metric,
        maximize=spec.higher_is_better,
        pruner=settings.pruner,
        seed=settings.seed,
        class_folds=tuple(tuple(fold) for fold in folds),
        experiment_id=experiment_id,
        base_dir=base_dir,
        sequential=settings.launcher != "slurm",
    )
    outcomes: list[Outcome] = []
    try:
        tunings = _open_studies(plan)
        for line in describe(entry_progress(plan)):
            log.info("resume   %s", line)
        for job in jobs:
            client.update_run(job.study_run, status="RUNNING")
        board = ProgressBoard(plan) if settings.progress_bar else None
        with board or contextlib.nullcontext():
            run_workers(
                plan,
                workers=settings.workers,
                launcher=settings.launcher,
                threads=settings.threads,
                slurm=dict(settings.slurm),
                quiet=board is not None,
                started=early,
            )
        for entry, job in zip(entries, jobs, strict=True):
            outcomes.append(_outcome(entry, job, tunings[job.label], client=client, plan=plan))
        verdict = _log_verdict(parent, tracking_uri, base.logger.experiment, base_dir)
        tables, failed = verdict.tables, [dict(entry) for entry in verdict.failed]  # compare's: one code path
        plot = verdict.save_figure(base_dir / "outputs" / "benchmark" / f"{parent}.png")
        report = verdict.to_text() + "\n" + "".join(f"{line}\n" for line in verdict.footer(plot))
    except BaseException:
        for job in jobs:
            if client.get_run(job.study_run).info.status == "RUNNING":
                client.set_terminated(job.study_run, status="KILLED")
        client.set_terminated(parent, status="KILLED")
        raise
    client.set_terminated(parent, status="FINISHED")
    seconds = time.monotonic() - started
    return Comparison(
        name, parent, tracking_uri, task, metric, baseline, outcomes, tables, failed, report, seconds, experiment_id
    )


def _log_settings(
    client: MlflowClient, run_id: str, settings: Settings, labels: Sequence[str], baseline: str, monitor: str
) -> None:
    from mlflow.entities import Param

    values = {
        "entries": ",".join(labels),
        "baseline": baseline,
        "trials": settings.budget.trials,
        "seeds": settings.budget.seeds,
        "max_epochs": settings.budget.max_epochs,
        "pruner": settings.pruner,
        "sampler_seed": settings.seed,
        "selection_metric": monitor,
        "overrides": " ".join(settings.overrides),
    }
    client.log_batch(run_id, params=[Param(key, str(value)[:6000]) for key, value in values.items()])


def _open_set(
    base: DictConfig, num_classes: int, *, embedding: bool, class_folds: int, disjoint: bool = False
) -> tuple[list[str], list[list[int]]]:
    """Metric learning is judged on classes the embedding never saw, as "A Metric Learning Reality Check"
    does: the overrides that hold the last 30 % of the classes out for test (unless the config already
    holds some out), and the class folds for tuning — each a class-disjoint validation split of the
    remaining classes (one fold of two classes by default, or `class_folds` partitions). The final seed
    runs train on every remaining class. A dataset that cannot hold classes out is class-disjoint already
    (CUB-200-2011, Cars196, SOP) or is re-split by class (`dataset.class_disjoint=true`)."""
    if not embedding:
        if class_folds > 1:
            raise ValueError("--class-folds is for metric learning (an embedding tested on unseen classes)")
        return [], []
    if "held_out_classes" not in base.dataset:
        if disjoint:
            log.info("split    dataset %r tests on classes it never trains on (its own split)", base.dataset.name)
            return [], []
        log.info("split    dataset %r re-split by class: test on the last half of its classes", base.dataset.name)
        return ["++dataset.class_disjoint=true"], []  # ++: the option may or may not list the reserved key
    held = list(base.dataset.held_out_classes or range(math.ceil(0.7 * num_classes), num_classes))
    remaining = [label for label in range(num_classes) if label not in held]
    if class_folds > 1:
        if len(remaining) // class_folds < 2 or len(remaining) - math.ceil(len(remaining) / class_folds) < 2:
            raise ValueError(
                f"--class-folds {class_folds} needs 2 classes per fold and 2 left to train on; "
                f"{len(remaining)} classes remain after holding out {held}"
            )
        folds = [remaining[fold::class_folds] for fold in range(class_folds)]
    else:
        folds = [remaining[-2:]]
    log.info("split    test on unseen classes %s; tune on class-disjoint validation folds %s", held, folds)
    return [f"dataset.held_out_classes={held}"], folds


def _common_task(entries: Sequence[Entry], dataset_task: Task, dataset_name: str) -> Task:
    """The one task every entry trains on this dataset (a comparison judges all by one metric)."""
    tasks = {}
    for entry in entries:
        task = training_task(loss_traits(LOSSES.load(entry.loss)).tasks, dataset_task)
        if task is None:
            raise ValueError(f"Loss {entry.loss!r} cannot train on dataset {dataset_name!r} ({dataset_task}).")
        tasks[entry.label] = task
    if len(set(tasks.values())) > 1:
        described = ", ".join(f"{label} → {task}" for label, task in tasks.items())
        raise ValueError(
            f"The entries train different tasks on {dataset_name!r} ({described}), so no one metric judges them "
            f"all: compare classifiers and metric losses separately."
        )
    return next(iter(tasks.values()))


def _default_name(dataset: str, labels: Sequence[str], budget: Budget, overrides: Sequence[str]) -> str:
    extra = ",".join(sorted(o for o in overrides if not o.startswith("dataset=")))
    return f"{dataset}:{','.join(labels)}:{budget.trials}x{budget.seeds}" + (f":{extra}" if extra else "")


def _job(
    entry: Entry, base_overrides: Sequence[str], *, name: str, client: MlflowClient, experiment_id: str, parent: str
) -> Job:
    """The entry's work: its overrides, study name and MLflow study run (found, or created under `parent`)."""
    study_run = _find_or_create(
        client,
        experiment_id,
        {COMPARISON: name, STAGE: "study", "entry": entry.label},
        run_name=f"study {entry.label}",
        tags={"mlflow.parentRunId": parent, "loss": entry.loss, **({"miner": entry.miner} if entry.miner else {})},
    )
    return Job(entry.label, (*base_overrides, *entry.overrides()), f"{name}/{entry.label}", study_run)


def _open_studies(plan: Plan) -> dict[str, EntryTuning]:
    """Create (or check) every entry's study and seed ledger before any worker starts: a changed search
    space, or a study with more trials than the budget, is refused here, once, naming what to do."""
    tunings = {}
    for job in plan.jobs:
        tuning = open_tuning(job, plan)
        with storage_lock(plan.storage):
            remaining_trials(tuning.study, plan.budget.trials, label=job.label, shared=tuning.shared)
        open_ledger(job, plan)
        tunings[job.label] = tuning
    return tunings


def _outcome(entry: Entry, job: Job, tuning: EntryTuning, *, client: MlflowClient, plan: Plan) -> Outcome:
    """The entry's result, read back from the stores once the workers are done; its study run closed."""
    tuned = tuning.tuned()
    _log_trials(client, job.study_run, tuned, monitor=plan.monitor)
    outcome = Outcome(entry, job.study_run, tuned)
    if tuned.failed:
        errors = sorted({trial["error"] for trial in tuned.trials if trial["error"]})
        outcome.error = f"all {len(tuned.trials)} trials failed: " + "; ".join(errors)[:1000]
        client.set_tag(job.study_run, "lossforge.error", outcome.error)
        client.set_terminated(job.study_run, status="FAILED")
        log.warning("tune     %s: %s", entry.label, outcome.error)
        return outcome
    outcome.by_seed = dict(sorted(finished_seed_runs(client, plan.experiment_id, job.study_run).items()))
    client.set_terminated(job.study_run, status="FINISHED")
    return outcome


def _find_or_create(
    client: MlflowClient, experiment_id: str, key: dict[str, str], *, run_name: str, tags: dict[str, str]
) -> str:
    """The run tagged with every `key` tag (resuming a comparison), or a new one."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in key.items())
    found = client.search_runs([experiment_id], filter_string=query, max_results=1, order_by=["start_time DESC"])
    if found:
        return found[0].info.run_id
    return client.create_run(experiment_id, run_name=run_name, tags={**key, **tags}).info.run_id


def _log_trials(client: MlflowClient, run_id: str, tuned: Tuned, *, monitor: str) -> None:
    """The trials table (CSV and markdown), the best parameters and score, and the trial counts."""
    columns = ["trial", "state", "value", "epochs", *tuned.tuned_parameters, "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(tuned.trials)
    client.log_text(run_id, buffer.getvalue(), "trials.csv")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for trial in tuned.trials:
        lines.append("| " + " | ".join(_cell(trial.get(column)) for column in columns) + " |")
    client.log_text(run_id, "\n".join(lines) + "\n", "trials.md")
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        client.set_tag(run_id, f"lossforge.trials.{state.lower()}", str(tuned.count(state)))
    if tuned.best_value is not None:
        client.log_metric(run_id, f"best_{monitor.replace('/', '_')}", tuned.best_value)
        for key, value in tuned.best_params.items():
            client.set_tag(run_id, f"best.{key}", str(value))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value).replace("|", "/").replace("\n", " ")


def _log_verdict(run_id: str, tracking_uri: str, experiment: str, base_dir: Path) -> ComparisonReport:
    """The verdict: [compare][lossforge.evaluation.compare.sweep.compare] over the comparison run, logged on it as
    `lossforge compare --log` does — the one computation of it, so the command rebuilds exactly this from
    the store — with the failed entries, the runs left out and the seeds that diverged."""
    return compare(run_id, tracking_uri=tracking_uri, experiment=experiment, base_dir=base_dir, log=True)
