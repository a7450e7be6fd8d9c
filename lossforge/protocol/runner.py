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

import copy
import csv
import hashlib
import io
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lossforge.components import list_losses
from lossforge.contract import Task, loss_traits, training_task
from lossforge.evaluation.compare import compare
from lossforge.evaluation.statistics import VerdictRow, is_comparable, verdict_table
from lossforge.hydra_options import compose
from lossforge.protocol.plan import BUDGETS, Budget, Entry
from lossforge.protocol.tuning import Tuned, prepare_storage, tune
from lossforge.registry import LOSSES
from lossforge.tasks import spec_for
from lossforge.tracking import (
    SweepJob,
    check_reachable,
    default_artifact_location,
    get_or_create_experiment,
    redact_uri,
    resolve_tracking_uri,
)
from lossforge.training.build import build_data
from lossforge.training.pruning import storage_url
from lossforge.training.run import train

log = logging.getLogger("lossforge.protocol")

STAGE = "lossforge.protocol.stage"
COMPARISON = "lossforge.comparison"


@dataclass(frozen=True)
class Settings:
    """One comparison.

    Attributes:
        overrides: Hydra overrides of the base experiment every entry shares (`dataset=…`, `model=…`).
        entries: the contestants; empty: every registered loss that declares the dataset's task.
        budget: trials and seeds per entry (and epochs per run).
        baseline: the entry every other is judged against; `None`: `cross_entropy` if it takes part,
            else the first entry.
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


def run_protocol(settings: Settings, *, base_dir: Path) -> Comparison:
    """Run (or resume) the comparison `settings` describes; log it to MLflow; return its verdict."""
    started = time.monotonic()
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
    baseline = settings.baseline or ("cross_entropy" if "cross_entropy" in labels else labels[0])
    if baseline not in labels:
        raise ValueError(f"Baseline {baseline!r} is not one of the entries: {', '.join(labels)}.")
    name = settings.name or _default_name(dataset.name, labels, budget, settings.overrides)

    tracking_uri = resolve_tracking_uri(base.logger.get("tracking_uri"), base_dir=base_dir)
    check_reachable(tracking_uri)
    client = MlflowClient(tracking_uri)
    location = default_artifact_location(base.logger.get("artifact_location"), tracking_uri, base_dir)
    experiment_id = get_or_create_experiment(client, base.logger.experiment, location)
    storage = prepare_storage(storage_url(settings.storage or "outputs/tuning.db", base_dir=base_dir))
    parent = _find_or_create(
        client,
        experiment_id,
        {COMPARISON: name, STAGE: "comparison"},
        run_name=f"comparison {name}"[:250],
        tags={"dataset": dataset.name, "task": str(task), "lossforge.protocol.metric": metric},
    )
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
    outcomes: list[Outcome] = []
    try:
        for entry in entries:
            outcomes.append(
                _run_entry(
                    entry,
                    base_overrides,
                    settings=settings,
                    name=name,
                    client=client,
                    experiment_id=experiment_id,
                    parent=parent,
                    storage=storage,
                    monitor=monitor,
                    maximize=spec.higher_is_better,
                    base_dir=base_dir,
                    class_folds=folds,
                )
            )
        tables = _verdict(outcomes, metric=metric, baseline=baseline)
        failed = failed_rows(outcomes, metric=metric)
        report = _log_verdict(parent, tracking_uri, base.logger.experiment, base_dir)
    except BaseException:
        client.set_terminated(parent, status="KILLED")
        raise
    client.set_terminated(parent, status="FINISHED")
    seconds = time.monotonic() - started
    return Comparison(name, parent, tracking_uri, task, metric, baseline, outcomes, tables, failed, report, seconds)


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


def _run_entry(
    entry: Entry,
    base_overrides: Sequence[str],
    *,
    settings: Settings,
    name: str,
    client: MlflowClient,
    experiment_id: str,
    parent: str,
    storage: str,
    monitor: str,
    maximize: bool,
    base_dir: Path,
    class_folds: Sequence[Sequence[int]] = (),
) -> Outcome:
    cfg = compose([*base_overrides, *entry.overrides()])
    study_run = _find_or_create(
        client,
        experiment_id,
        {COMPARISON: name, STAGE: "study", "entry": entry.label},
        run_name=f"study {entry.label}",
        tags={"mlflow.parentRunId": parent, "loss": entry.loss, **({"miner": entry.miner} if entry.miner else {})},
    )
    client.update_run(study_run, status="RUNNING")
    tuned = tune(
        cfg,
        label=entry.label,
        budget=settings.budget,
        storage=storage,
        study_name=f"{name}/{entry.label}",
        monitor=monitor,
        maximize=maximize,
        pruner=settings.pruner,
        seed=settings.seed,
        class_folds=class_folds,
    )
    _log_trials(client, study_run, tuned, monitor=monitor)
    outcome = Outcome(entry, study_run, tuned)
    if tuned.failed:
        errors = sorted({trial["error"] for trial in tuned.trials if trial["error"]})
        outcome.error = f"all {len(tuned.trials)} trials failed: " + "; ".join(errors)[:1000]
        client.set_tag(study_run, "lossforge.error", outcome.error)
        client.set_terminated(study_run, status="FAILED")
        log.warning("tune     %s: %s", entry.label, outcome.error)
        return outcome
    best = copy.deepcopy(cfg)
    for key, value in tuned.best_params.items():
        OmegaConf.update(best, key, value, merge=False)
    done = _finished_seed_runs(client, experiment_id, study_run)
    for seed in range(settings.budget.seeds):
        if seed in done:
            outcome.by_seed[seed] = done[seed]
            continue
        outcome.by_seed[seed] = _train_seed(best, entry, seed, name=name, study_run=study_run, base_dir=base_dir)
    client.set_terminated(study_run, status="FINISHED")
    return outcome


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
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{safe[: limit - len(digest) - 1]}-{digest}"


def _train_seed(
    cfg: DictConfig, entry: Entry, seed: int, *, name: str, study_run: str, base_dir: Path
) -> dict[str, float]:
    """Retrain the entry's best configuration with `seed` as a full run under its study, tested once."""
    run_cfg = copy.deepcopy(cfg)
    run_cfg.seed = seed
    run_cfg.run_name = f"{entry.label} seed {seed}"
    run_cfg.trainer.enable_progress_bar = False
    output_dir = base_dir / "outputs" / "benchmark" / directory_name(name) / entry.label / f"seed-{seed}"
    job = SweepJob(sweep_dir=str(output_dir.parent), job_num=seed, overrides=(), parent_run_id=study_run)
    tags = {COMPARISON: name, STAGE: "final", "entry": entry.label, "lossforge.protocol.seed": str(seed)}
    log.info("final    %s seed %d", entry.label, seed)
    return train(run_cfg, base_dir=base_dir, output_dir=output_dir, sweep_job=job, tags=tags, summary=False)


def _find_or_create(
    client: MlflowClient, experiment_id: str, key: dict[str, str], *, run_name: str, tags: dict[str, str]
) -> str:
    """The run tagged with every `key` tag (resuming a comparison), or a new one."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in key.items())
    found = client.search_runs([experiment_id], filter_string=query, max_results=1, order_by=["start_time DESC"])
    if found:
        return found[0].info.run_id
    return client.create_run(experiment_id, run_name=run_name, tags={**key, **tags}).info.run_id


def _finished_seed_runs(client: MlflowClient, experiment_id: str, study_run: str) -> dict[int, dict[str, float]]:
    """The seed runs of a study that already finished (a resumed comparison does not train them again)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{study_run}' and tags.`{STAGE}` = 'final'",
    )
    return {
        int(run.data.tags["lossforge.protocol.seed"]): dict(run.data.metrics)
        for run in runs
        if run.info.status == "FINISHED"
    }


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


def _verdict(outcomes: Sequence[Outcome], *, metric: str, baseline: str) -> dict[str, list[VerdictRow]]:
    """A verdict table per comparable test metric the entries share, the selection metric first."""
    finished = [outcome for outcome in outcomes if outcome.by_seed]
    shared = set.intersection(*(set(runs) for o in finished for runs in o.by_seed.values())) if finished else set()
    others = (key for key in shared if key != metric and key.startswith("test/") and key.count("/") == 1)
    metrics = [metric, *sorted(key for key in others if is_comparable(key))]
    tables = {}
    for name in metrics:
        groups = {
            outcome.entry.label: {seed: runs[name] for seed, runs in outcome.by_seed.items() if name in runs}
            for outcome in finished
        }
        groups = {label: values for label, values in groups.items() if values}
        if groups:
            tables[name] = verdict_table(groups, metric=name, baseline=baseline if baseline in groups else None)
    return tables


def failed_rows(outcomes: Sequence[Outcome], *, metric: str) -> list[dict[str, Any]]:
    """Entries without results, as rows of the verdict table: failed, with the reason."""
    return [
        {"group": o.entry.label, "metric": metric, "n": 0, "verdict": "failed", "error": o.error}
        for o in outcomes
        if o.error
    ]


def _log_verdict(run_id: str, tracking_uri: str, experiment: str, base_dir: Path) -> str:
    """Log the verdict tables, the plot and each entry's mean and CI on the comparison run — through
    [compare][lossforge.evaluation.compare.compare], as `lossforge compare` does, so that the command
    rebuilds exactly this from the store — and return the report as the command prints it."""
    report = compare(run_id, tracking_uri=tracking_uri, experiment=experiment, base_dir=base_dir)
    plot = report.save_figure(base_dir / "outputs" / "benchmark" / f"{run_id}.png")
    return report.to_text() + "\n" + "".join(f"{line}\n" for line in report.footer(plot))
