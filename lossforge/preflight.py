"""Before a sweep's first job trains: every job's configuration checked the way a single run checks its own.

A sweep such as `-m loss=l1,cross_entropy dataset=regression_outliers` used to train `l1` first and fail on
`cross_entropy` minutes later. `sweep_problems` enumerates the jobs of Hydra's basic sweeper (the
command line's sweeps and an experiment's `hydra.sweeper.params`) exactly as it will launch them, composes
each job's configuration, and runs the checks that need no data and no training:

* the configuration composes (an unknown parameter of a typed option, a value of the wrong type);
* the loss and the miner build with their parameters (an unknown parameter, a value they refuse) — a plugin
  that does not even import is left to its job, which records the failure and can be resumed once it is fixed;
* the loss serves the dataset's task (its `tasks` against the dataset's `task`);
* a miner goes with a metric loss only; `trainer.max_epochs` is at least 1.

The sweep callback refuses a sweep with any such job before it records anything. A sweeper that draws its
jobs as it goes (Optuna) cannot be enumerated in advance: its jobs are checked one by one, as before.
Jobs that differ only in seeds are checked once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

SEED_KEYS = ("seed", "dataset.split_seed")
"""Overrides that never change whether a job can run: jobs that differ only in these are checked once."""
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
"""The sweeper whose jobs are known before the first starts (Hydra's default)."""


@dataclass(frozen=True)
class BadJob:
    """A job of a sweep that cannot run: its number, its overrides, and why."""

    job_num: int
    overrides: tuple[str, ...]
    reason: str


def sweep_jobs(config: DictConfig) -> list[list[str]] | None:
    """Each job's overrides, in launch order, as Hydra's basic sweeper will launch them; `None` for another
    sweeper, or when the sweep cannot be enumerated here (Hydra reports that itself when it launches)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.get("sweeper") or {}
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(overrides, None)
    except Exception:  # e.g. glob() sweeps, which need Hydra's config loader
        return None
    return [list(job) for batch in batches for job in batch]


def sweep_refusal(config: DictConfig, compose: Callable[[list[str]], DictConfig] | None = None) -> str | None:
    """Why the sweep `config` (the multirun's composed config, as `on_multirun_start` gets it) must not
    start — each job that cannot run ([refusal][lossforge.preflight.refusal]) — or `None` when every job can, or when
    the sweeper's jobs are not known in advance. `compose` builds a job's task configuration from its overrides
    (default: Hydra's `compose` of the running app)."""
    jobs = sweep_jobs(config)
    if not jobs:
        return None
    bad = bad_jobs(jobs, compose or functools.partial(_compose, str(config.hydra.job.config_name)))
    return refusal(bad, len(jobs)) if bad else None


def bad_jobs(jobs: Sequence[Sequence[str]], compose: Callable[[list[str]], DictConfig]) -> list[BadJob]:
    """The jobs (each given by its overrides, numbered in order) that cannot run; jobs that differ only in
    [SEED_KEYS][lossforge.preflight.SEED_KEYS] are checked once."""
    reasons: dict[tuple[str, ...], str | None] = {}
    bad = []
    for job_num, overrides in enumerate(jobs):
        key = tuple(override for override in overrides if _key(override) not in SEED_KEYS)
        if key not in reasons:
            reasons[key] = job_problem(overrides, compose)
        reason = reasons[key]
        if reason is not None:
            bad.append(BadJob(job_num, tuple(overrides), reason))
    return bad


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose

    return compose(config_name=config_name, overrides=overrides)


def job_problem(overrides: Sequence[str], compose: Callable[[list[str]], DictConfig]) -> str | None:
    """Why the job with `overrides` cannot run, in one line; `None` when it passes every check."""
    try:
        cfg = compose(list(overrides))
    except Exception as error:
        return _one_line(error)
    try:
        return config_problem(cfg)
    except Exception as error:  # a check that itself fails (a plugin that does not load): the job's problem
        return _one_line(error)


def config_problem(cfg: DictConfig) -> str | None:
    """Why the composed task configuration `cfg` cannot run (the checks of a single run that need no data and
    no training), or `None`."""
    from lossforge.contract import Task, loss_traits, trainable_tasks, training_task
    from lossforge.registry import LOSSES, MINERS

    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs < 1:
        return f"trainer.max_epochs must be >= 1 (got {max_epochs})"
    loss_name = str(cfg.loss.name)
    miner_name = str(cfg.miner.name) if cfg.get("miner") is not None else None
    if not _loads(LOSSES, loss_name) or (miner_name is not None and not _loads(MINERS, miner_name)):
        return None  # a plugin that does not import fails its own job, recorded, and resumable once it is fixed
    loss = LOSSES.build(loss_name, **_params(cfg.loss))
    traits = loss_traits(loss)
    dataset_name = str(cfg.dataset.name)
    dataset_task = _dataset_task(OmegaConf.to_yaml(cfg.dataset), int(cfg.seed))
    if dataset_task is None:
        return None  # the dataset does not load or build here: its job says why, as a single run would
    task = training_task(traits.tasks, dataset_task)
    if task is None:
        tasks = set(trainable_tasks(dataset_task))
        fitting = [
            name
            for name in LOSSES.names()
            if _loads(LOSSES, name) and tasks & set(loss_traits(LOSSES.load(name)).tasks)
        ]
        return (
            f"Loss {loss_name!r} serves {', '.join(traits.tasks)}, but dataset {dataset_name!r} is a "
            f"{dataset_task} task. Losses that fit {dataset_name!r}: {', '.join(fitting) or 'none'}."
        )
    if miner_name is not None:
        if task != Task.METRIC:
            return (
                f"Miner {miner_name!r} mines pairs/triplets for metric losses, but loss {loss_name!r} is a {task} loss."
            )
        MINERS.build(miner_name, **{key: value for key, value in _params(cfg.miner).items() if value is not None})
    return None


def _loads(registry: Any, name: str) -> bool:
    """Whether component `name` imports. One that does not is no configuration error: its job fails and is
    recorded, and `sweep.resume=true` reruns it once its package is fixed (`lossforge.sweeps.multirun`)."""
    try:
        registry.load(name)
    except Exception:
        return False
    return True


@functools.cache
def _dataset_task(dataset_yaml: str, run_seed: int) -> str | None:
    """The task of the dataset a config node (as YAML) describes: the `task` its function declares (the dataset
    contract), else the task of the data it builds (once per dataset configuration; a dataset that declares its
    task is never built here). `None` when it cannot be told here (the dataset fails to load or build): the
    job that uses it reports that itself."""
    from lossforge import data

    node = OmegaConf.create(dataset_yaml)
    name = str(node.name)
    try:
        registry: Any = data.DATASETS
        function = registry.load(name) if hasattr(registry, "load") else registry[name]  # a registry, or a dict
        declared = getattr(function, "task", None)
        if declared is not None:
            return str(declared)
        if hasattr(data, "load_dataset"):  # the node as a run builds it: its split seed, its reserved keys
            return str(data.load_dataset(_params(node, keep_name=True)).task)
        return str(data.build_dataset(name, seed=run_seed, **_params(node)).task)
    except Exception:
        return None


def _params(node: Any, *, keep_name: bool = False) -> dict[str, Any]:
    """A component's config node as keyword arguments (its `name` left out unless `keep_name`)."""
    values = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    assert isinstance(values, dict)
    return {str(key): value for key, value in values.items() if keep_name or key != "name"}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def refusal(bad: Sequence[BadJob], jobs: int) -> str:
    """The message that refuses a sweep: each job that cannot run, and what to do.

    ```pycon
    >>> print(refusal([BadJob(1, ("loss=cross_entropy", "dataset=regression_outliers"), "Loss ... task.")], 2))
    the sweep was refused before any job trained: 1 of its 2 jobs cannot run.
      job 1 (loss=cross_entropy dataset=regression_outliers): Loss ... task.
    Drop these combinations (sweep them separately) or fix their settings; nothing was trained or recorded.

    ```
    """
    lines = [f"the sweep was refused before any job trained: {len(bad)} of its {jobs} jobs cannot run."]
    lines += [f"  job {job.job_num} ({' '.join(job.overrides)}): {job.reason}" for job in bad]
    lines.append(
        "Drop these combinations (sweep them separately) or fix their settings; nothing was trained or recorded."
    )
    return "\n".join(lines)
