"""One entry's tuning study: the same number of Optuna trials for every loss, scored on validation only.

A trial samples the shared optimizer space and the loss's (and miner's) declared search space, trains
on the training split with [lossforge.training.run.fit_for_validation][] (no test pass, no MLflow
run), and returns the last epoch's validation score. A median pruner stops trials whose per-epoch score
falls behind; a trial that fails (a NaN loss, an error in a plugin) is recorded as failed with its reason
and the study goes on.

The trials live in Optuna's own storage ([prepare_storage][lossforge.protocol.tuning.prepare_storage]):
`outputs/tuning.db` (SQLite) by default, or any storage `--storage` names — PostgreSQL, or Optuna's journal file for
shared file systems — so `optuna.load_study`, `optuna.get_all_study_summaries` and optuna-dashboard read them, and a
killed comparison resumes with the trials it had. The budget is exact: complete, pruned and failed trials count; a
trial its process never finished (`kill -9`) is marked failed with `lossforge.interrupted` and run again.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import functools
import json
import logging
import math
import os
import shlex
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from lossforge.contract import parse_search_space, search_space, suggest
from lossforge.protocol.plan import SHARED_SPACE, Budget
from lossforge.registry import LOSSES, MINERS
from lossforge.run_dirs import pid_space, process_alive
from lossforge.tracking import redact_uri
from lossforge.training.pruning import ReportToTrial, median_pruner
from lossforge.training.run import fit_for_validation

log = logging.getLogger("lossforge.protocol")

_SPENT = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
"""Trial states that use up part of the budget (a trial whose process was killed never finished: it does not,
see INTERRUPTED)."""


INTERRUPTED = "lossforge.interrupted"
"""Marks a trial whose process ended before it did (`kill -9`, a lost node): failed in Optuna's records,
but not part of the budget — it is run again."""
WORKER = "lossforge.worker"
"""The trial's user attribute that names the worker running it: `host:pid`."""
PID_SPACE = "lossforge.pid_space"
"""The trial's user attribute that says where its worker's pid is valid (`lossforge.run_dirs.pid_space`): a worker
in the same space sees at once that the trial's worker died, without waiting for its heartbeat to go stale."""
SEARCH = "lossforge.search"
"""The study's user attribute that records what it searches (its space and direction): a re-run that
searches something else refuses to mix the two."""


def prepare_storage(url: str) -> str:
    """Create (or upgrade) the storage at `url` once, before any worker starts; return `url`.

    Optuna creates its tables on first use, and two processes doing so at once race (one fails on a table the
    other just made), so the SQLite file's schema is made here under a file lock beside it; a database server
    or a journal file is prepared the same way by the one process that starts the workers. A `tuning.db`
    in lossforge's old hand-written format (before Optuna's storage) is moved aside, with one line saying so.
    """
    from filelock import FileLock

    from lossforge.training.pruning import open_storage

    if url.startswith("journal:"):
        Path(url[len("journal:") :]).parent.mkdir(parents=True, exist_ok=True)
        open_storage(url)
        return url
    path = _sqlite_path(url)
    lock = FileLock(f"{path}.lock") if path is not None else contextlib.nullcontext()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        if path is not None and _is_old_trial_table(path):
            aside = _free_name(path.with_name(f"{path.stem}.before-optuna{path.suffix}"))
            path.rename(aside)
            log.warning("tune     %s holds trials in lossforge's old format: moved aside to %s", path, aside.name)
        try:
            optuna.storages.RDBStorage(url)  # creates the tables of a new storage
        except RuntimeError as error:  # a storage of an older Optuna: upgrade its schema, as `optuna storage upgrade`
            if "upgrade" not in str(error):
                raise
            optuna.storages.RDBStorage(url, skip_compatibility_check=True).upgrade()
            log.info("tune     upgraded the Optuna storage schema of %s", url)
    return url


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def _free_name(path: Path) -> Path:
    candidate, number = path, 1
    while candidate.exists():
        candidate, number = path.with_name(f"{path.stem}-{number}{path.suffix}"), number + 1
    return candidate


def _is_old_trial_table(path: Path) -> bool:
    """Whether `path` is lossforge's old `TrialStore` file: a `trials` table with a `study` column
    and none of Optuna's tables."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with closing(sqlite3.connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "trials" not in tables or "studies" in tables:
            return False
        columns = {row[1] for row in connection.execute("PRAGMA table_info(trials)")}
    return "study" in columns


def open_study(
    *,
    storage: str,
    study_name: str,
    maximize: bool,
    search: dict[str, Any],
    sampler: Callable[[int], optuna.samplers.BaseSampler],
    pruner: optuna.pruners.BasePruner,
    heartbeat: tuple[int, int] | None = None,
) -> optuna.Study:
    """The study `study_name` in `storage`, created if new; a study that searched something else
    (`search`: its space and direction, as JSON-able values) is refused, naming how to start afresh.

    `sampler` makes the sampler given how many trials the study already has: a seeded sampler of a resumed
    study must not start its random sequence again (it would repeat the first trials), so it is seeded with
    the seed plus that count ([seeded][lossforge.protocol.tuning.seeded]) — the same resume gives the same trials again.
    """
    from lossforge.training.pruning import open_storage

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9: said once, here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        opened = open_storage(storage, heartbeat=heartbeat)
    study = optuna.create_study(
        storage=opened,
        study_name=study_name,
        direction="maximize" if maximize else "minimize",
        pruner=pruner,
        load_if_exists=True,
    )
    study.sampler = sampler(len(study.get_trials(deepcopy=False)))
    wanted = json.loads(json.dumps({**search, "direction": "maximize" if maximize else "minimize"}, sort_keys=True))
    recorded = study.user_attrs.get(SEARCH)
    if recorded is None:
        study.set_user_attr(SEARCH, wanted)
    elif recorded != wanted:
        changed = sorted(key for key in {*recorded, *wanted} if recorded.get(key) != wanted.get(key))
        raise ValueError(
            f"Study {study_name!r} in {redact_uri(storage)} searched a different space ({', '.join(changed)} "
            f"changed), and its trials cannot be mixed with the new ones. Start afresh under another name "
            f"(--name for a comparison, hydra.sweeper.study_name for a sweep), or delete it: "
            f"optuna delete-study --study-name {shlex.quote(study_name)} --storage {shlex.quote(_cli_url(storage))}"
        )
    return study


def worker_name() -> str:
    """This worker, as its trials record it: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(trial: optuna.Trial) -> None:
    """Record on `trial` which worker runs it ([WORKER][lossforge.protocol.tuning.WORKER], and the space its
    pid is valid in, [PID_SPACE][lossforge.protocol.tuning.PID_SPACE])."""
    trial.set_user_attr(WORKER, worker_name())
    space = pid_space()
    if space is not None:
        trial.set_user_attr(PID_SPACE, space)


def seeded(seed: int | None, done: int) -> int | None:
    """The sampler seed of a study that already has `done` trials: `seed` for a new study.

    ```pycon
    >>> seeded(0, 0), seeded(0, 3), seeded(None, 3)
    (0, 3, None)

    ```
    """
    return None if seed is None else seed + done


def _cli_url(storage: str) -> str:
    return redact_uri(storage) if not storage.startswith("journal:") else storage[len("journal:") :]


def spent_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that use up the budget: complete, pruned and failed — not interrupted ones."""
    trials = study.get_trials(deepcopy=False, states=_SPENT)
    return [trial for trial in trials if not trial.user_attrs.get(INTERRUPTED)]


def close_interrupted(study: optuna.Study) -> int:
    """Mark the trials left `RUNNING` by a process that was killed as failed and interrupted (not counted,
    run again); return how many. For a storage without heartbeats (a journal file, the sweeper's study),
    called by the one process that runs the study, before it runs trials."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return sum(_interrupt(study, trial._trial_id) for trial in running)


def close_stale(study: optuna.Study) -> int:
    """Mark the running trials whose heartbeat stopped (their worker died) as failed and interrupted; return
    how many. Optuna's `fail_stale_trials` does the same but fails a trial before its callback runs, and a
    finished trial takes no more attributes — so the mark is set here first, under the storage's lock."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage  # RDBStorage behind Optuna's cache: both heartbeat-capable
    stale = set(dead_workers_trials(study))  # on this machine: known at once
    if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        stale.update(storage._get_stale_trial_ids(study._study_id))  # elsewhere: once the heartbeat stops
    return sum(_interrupt(study, trial_id) for trial_id in sorted(stale))


def dead_workers_trials(study: optuna.Study) -> list[int]:
    """The ids of `study`'s running trials whose worker shares this process's pid space and has exited
    (killed, out of memory): no need to wait for their heartbeat to go stale."""
    here = pid_space()
    if here is None:
        return []
    dead = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = str(trial.user_attrs.get(WORKER, "")).rpartition(":")[2]
        if trial.user_attrs.get(PID_SPACE) == here and pid.isdigit() and int(pid) != os.getpid():
            if not process_alive(int(pid)):
                dead.append(trial._trial_id)
    return dead


def _interrupt(study: optuna.Study, trial_id: int) -> bool:
    try:
        study._storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
        study._storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:  # it finished meanwhile
        return False
    number = study._storage.get_trial_number_from_id(trial_id)
    log.info("tune     %s: trial %d's process stopped before it did: not counted, run again", study.study_name, number)
    return True


def remaining_trials(study: optuna.Study, budget: int, *, label: str, shared: bool = False) -> int:
    """How many trials the study still needs for exactly `budget`; a study that already has more (a re-run
    with a smaller budget) is refused: its verdict would rest on a different budget than the one asked.

    `shared`: other workers may be running trials of this study (a storage with heartbeats): only the
    trials whose heartbeat stopped are interrupted; otherwise every trial left `RUNNING` is.
    """
    if shared:
        close_stale(study)
    else:
        close_interrupted(study)
    spent = len(spent_trials(study))
    if spent > budget:
        raise ValueError(
            f"Study {study.study_name!r} already has {spent} trials, more than the budget of {budget}: give it a "
            f"budget of {spent} or more to keep its trials (--trials for a comparison, hydra.sweeper.n_trials "
            f"for a sweep), or start afresh under another name (--name, hydra.sweeper.study_name)."
        )
    if spent and spent < budget:
        log.info("tune     %s: continues its study, %d of %d trials done", label, spent, budget)
    elif spent == budget:
        log.info("tune     %s: reuses its study, %d of %d trials done", label, spent, budget)
    return budget - spent


HEARTBEAT, GRACE = 5, 20
"""Heartbeats of a trial in a database storage (seconds): every HEARTBEAT a running trial says it is alive;
one silent for GRACE is stale — its worker died — and is failed, marked interrupted and run again."""


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """Hold the study storage's lock: a file lock beside an SQLite or journal file, a PostgreSQL advisory
    lock on a database server; other databases have none (their budget may overshoot by a worker or two)."""
    from filelock import FileLock

    path = Path(url[len("journal:") :]) if url.startswith("journal:") else _sqlite_path(url)
    if path is not None:
        with FileLock(f"{path}.lock"):
            yield
    elif url.startswith("postgresql"):
        from sqlalchemy import text

        with _engine(url).connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY})
    else:
        yield


_ADVISORY_KEY = 0x10557F0E  # lossforge's tuning lock among a server's advisory locks


@functools.cache
def _engine(url: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


def reserve_trial(
    study: optuna.Study,
    budget: int,
    *,
    storage: str,
    shared: bool,
    sequential: bool = False,
    sampler: Callable[[int], optuna.samplers.BaseSampler] | None = None,
) -> optuna.Trial | bool:
    """A new trial of `study` if it has fewer than `budget` trials counted and running — checked and
    created under the storage's lock, so workers sharing the study never overshoot; else whether another
    worker still runs one (`True`: wait for it, or do other work — its result, or its heartbeat stopping,
    decides; `False`: the study is done). Optuna's `MaxTrialsCallback` counts without creating, so N
    workers overshoot by up to N − 1.

    Args:
        sequential: one trial of the study at a time: none is created while another worker runs one (`True`
            is returned), so every trial sees every earlier one's result, whichever worker runs it.
        sampler: makes the sampler of the new trial from its number (`seeded`): the trial's parameters then
            depend only on the study's earlier trials, not on which worker, in which process, asks.
    """
    with storage_lock(storage):
        if shared:
            close_stale(study)
        trials = study.get_trials(deepcopy=False)
        running = [
            trial
            for trial in trials
            if trial.state == optuna.trial.TrialState.RUNNING and not trial.user_attrs.get(INTERRUPTED)
        ]
        if sequential and running:
            return True
        if len(spent_trials(study)) + len(running) < budget:
            if sampler is not None:
                study.sampler = sampler(len(trials))
            with warnings.catch_warnings():  # our own loop beats the heart (heartbeat()), as Study.optimize does
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                return study.ask()
        return bool(running)


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial, *, interval: int | None) -> Iterator[None]:
    """Record the running `trial`'s heartbeat every `interval` seconds in a thread (as
    `Study.optimize` does for its own trials); `None`: a storage without heartbeats."""
    if interval is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            study._storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    budget: int,
    *,
    storage: str,
    heartbeat_interval: int | None = HEARTBEAT,
    sequential: bool = False,
    sampler: Callable[[int], optuna.samplers.BaseSampler] | None = None,
) -> None:
    """Run trials of `study` until it has exactly `budget`, alone or beside other workers: a pruned trial
    is told pruned, one whose objective raised is told failed (its error recorded by the objective).

    `heartbeat_interval`: the storage's heartbeat (`open_study(heartbeat=…)`), `None` without one —
    then this must be the only worker of the study. `sequential`, `sampler`: see
    [reserve_trial][lossforge.protocol.tuning.reserve_trial]."""
    pace = Pace()
    while True:
        step = run_one_trial(
            study,
            objective,
            budget,
            storage=storage,
            heartbeat_interval=heartbeat_interval,
            sequential=sequential,
            sampler=sampler,
            pace=pace,
        )
        if step is Step.DONE:
            return
        if step is Step.BUSY:  # the last trials run in other workers: wait for their results (or their death)
            time.sleep(heartbeat_interval or 1)


class Step(enum.Enum):
    """What one step of a worker did: ran a trial or a seed run, found only work other workers hold, or found
    nothing left to do."""

    RAN = "ran"
    BUSY = "busy"
    DONE = "done"


@dataclass
class Pace:
    """This worker's seconds per trial so far, for the time-left estimate of its progress lines."""

    seconds: float = 0.0
    trials: int = 0

    def add(self, seconds: float) -> None:
        self.seconds, self.trials = self.seconds + seconds, self.trials + 1

    @property
    def per_trial(self) -> float:
        return self.seconds / self.trials if self.trials else 0.0


def run_one_trial(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    budget: int,
    *,
    storage: str,
    heartbeat_interval: int | None = HEARTBEAT,
    sequential: bool = False,
    sampler: Callable[[int], optuna.samplers.BaseSampler] | None = None,
    pace: Pace | None = None,
) -> Step:
    """Reserve one trial of `study` ([reserve_trial][lossforge.protocol.tuning.reserve_trial]) and run it,
    with its heartbeat, telling Optuna how it ended, and log its progress line; or say why none was run."""
    trial = reserve_trial(
        study, budget, storage=storage, shared=heartbeat_interval is not None, sequential=sequential, sampler=sampler
    )
    if trial is True:
        return Step.BUSY
    if trial is False:
        return Step.DONE
    assert isinstance(trial, optuna.Trial)
    claim(trial)
    started = time.monotonic()
    with heartbeat(study, trial, interval=heartbeat_interval):
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except Exception as error:  # recorded, and the study goes on
            log.warning("tune     %s: trial %d failed: %s", study.study_name, trial.number, error)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    pace = pace or Pace()
    pace.add(time.monotonic() - started)
    log.info("%s", progress_line(study, budget, trial.number, seconds_per_trial=pace.per_trial))
    return Step.RAN


def progress_line(study: optuna.Study, budget: int, number: int, *, seconds_per_trial: float) -> str:
    """One line per finished trial: trials done / budget, pruned and failed counts, the best validation
    score so far, and the time left at this worker's pace (a log, a SLURM worker's output: no bar).

    ```pycon
    >>> study = optuna.create_study(direction="maximize")
    >>> for value in (0.5, 0.75):
    ...     study.add_trial(optuna.trial.create_trial(value=value))
    >>> study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    >>> progress_line(study, 10, 2, seconds_per_trial=30.0)
    'tune     no-name-…: trial 2 PRUNED; 3/10 trials (1 pruned, 0 failed), best 0.75; ~4 min left'

    ```
    """
    spent = spent_trials(study)
    state = study.get_trials(deepcopy=False)[number].state.name
    counts = {name: sum(trial.state.name == name for trial in spent) for name in ("PRUNED", "FAIL")}
    complete = [
        float(trial.value)
        for trial in spent
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.value is not None
    ]
    best = (max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min)(complete) if complete else None
    left = max(0, budget - len(spent)) * seconds_per_trial
    name = study.study_name if not study.study_name.startswith("no-name-") else "no-name-…"
    return (
        f"tune     {name}: trial {number} {state}; {len(spent)}/{budget} trials ({counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed), best {'-' if best is None else f'{best:.4g}'}; ~{_duration(left)} left"
    )


def _duration(seconds: float) -> str:
    """`45 s`, `4 min`, `2.5 h`.

    ```pycon
    >>> _duration(45), _duration(240), _duration(9000)
    ('45 s', '4 min', '2.5 h')

    ```
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Tuned:
    """What a study found: the best configuration (overrides such as `loss.gamma`), its validation
    score, and every trial as a row of the trials table."""

    best_params: dict[str, Any]
    best_value: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    tuned_parameters: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """Every trial failed: nothing to retrain."""
        return self.best_value is None

    def count(self, state: str) -> int:
        return sum(trial["state"] == state for trial in self.trials)


def component_spaces(cfg: DictConfig) -> dict[str, Any]:
    """The priors a trial samples, keyed by config path: the shared optimizer space, then the loss's and
    the miner's declared spaces (`loss.<param>`, `miner.<param>`)."""
    spaces: dict[str, Any] = dict(parse_search_space(SHARED_SPACE, owner="the shared optimizer space"))
    spaces.update({f"loss.{name}": prior for name, prior in search_space(LOSSES.load(cfg.loss.name)).items()})
    if cfg.get("miner") is not None:
        miner_space = search_space(MINERS.load(cfg.miner.name))
        spaces.update({f"miner.{name}": prior for name, prior in miner_space.items()})
    return spaces


def tune(
    cfg: DictConfig,
    *,
    label: str,
    budget: Budget,
    storage: str,
    study_name: str,
    monitor: str,
    maximize: bool,
    pruner: bool = True,
    seed: int = 0,
    class_folds: Sequence[Sequence[int]] = (),
) -> Tuned:
    """Run (or resume) the study of one entry until it has exactly `budget.trials` trials, in this process.

    Args:
        cfg: the entry's composed config (its loss and miner chosen); each trial changes a copy.
        label: the entry's name, for messages.
        budget: the number of trials (complete, pruned and failed ones count).
        storage: the Optuna storage, a canonical URL (`lossforge.training.pruning.storage_url`) that
            [prepare_storage][lossforge.protocol.tuning.prepare_storage] has prepared.
        study_name: the study's name in that storage; the same name resumes it.
        monitor: the validation metric, e.g. `val/f1_macro`.
        maximize: whether higher is better.
        pruner: stop poor trials early with a median pruner (off: every trial runs all its epochs).
        seed: the sampler's seed.
        class_folds: metric learning, k-fold over class partitions: a trial trains once per fold, with that
            fold's classes as its class-disjoint validation split (`dataset.val_classes`), and scores the
            mean; the pruner watches the first fold. Empty: one training run on the configured split.
    """
    tuning = EntryTuning.open(
        cfg,
        label=label,
        budget=budget,
        storage=storage,
        study_name=study_name,
        monitor=monitor,
        maximize=maximize,
        pruner=pruner,
        seed=seed,
        class_folds=class_folds,
    )
    with storage_lock(storage):
        remaining = remaining_trials(tuning.study, budget.trials, label=label, shared=tuning.shared)
    if remaining > 0:
        log.info("tune     %s: %d trial(s) to run", label, remaining)
        run_trials(
            tuning.study,
            tuning.objective,
            budget.trials,
            storage=storage,
            heartbeat_interval=HEARTBEAT if tuning.shared else None,
            sequential=True,
            sampler=tuning.sampler,
        )
    return tuning.tuned()


@dataclass
class EntryTuning:
    """One entry's study, open in this process, and what its trials run: the objective over `spaces`.

    Attributes:
        study: the entry's Optuna study.
        spaces: config key → prior, what a trial samples
            ([component_spaces][lossforge.protocol.tuning.component_spaces]).
        objective: one trial: trains on the training split and returns its validation score.
        sampler: the sampler of trial number `n` (TPE seeded with the seed plus `n`).
        shared: the storage has heartbeats (a database), so workers may share the study.
    """

    study: optuna.Study
    spaces: dict[str, Any]
    objective: Callable[[optuna.Trial], float]
    sampler: Callable[[int], optuna.samplers.BaseSampler]
    shared: bool

    @classmethod
    def open(
        cls,
        cfg: DictConfig,
        *,
        label: str,
        budget: Budget,
        storage: str,
        study_name: str,
        monitor: str,
        maximize: bool,
        pruner: bool = True,
        seed: int = 0,
        class_folds: Sequence[Sequence[int]] = (),
        warn: bool = True,
    ) -> EntryTuning:
        """Open (or create) the entry's study; the arguments are [tune][lossforge.protocol.tuning.tune]'s
        (`warn`: say when the entry declares no search space)."""
        spaces = component_spaces(cfg)
        if warn and not [key for key in spaces if key.startswith(("loss.", "miner."))]:
            log.warning(
                "tune     %s declares no search space: tuned over the learning rate and weight decay only", label
            )
        epochs = int(cfg.trainer.max_epochs)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        shared = not storage.startswith("journal:")  # a database storage has heartbeats: workers may share it

        def sampler(trials: int) -> optuna.samplers.BaseSampler:
            return optuna.samplers.TPESampler(seed=seeded(seed, trials))

        study = open_study(
            storage=storage,
            study_name=study_name,
            maximize=maximize,
            search={key: repr(prior) for key, prior in spaces.items()},
            sampler=sampler,
            pruner=(
                median_pruner(n_startup_trials=max(2, budget.trials // 4), n_warmup_steps=max(1, epochs // 4))
                if pruner
                else optuna.pruners.NopPruner()
            ),
            heartbeat=(HEARTBEAT, GRACE) if shared else None,
        )
        objective = functools.partial(_objective, cfg=cfg, spaces=spaces, monitor=monitor, class_folds=class_folds)
        return cls(study, spaces, objective, sampler, shared)

    def tuned(self) -> Tuned:
        """What the study found so far."""
        return _tuned(self.study, tuple(self.spaces))


def _objective(
    trial: optuna.Trial,
    *,
    cfg: DictConfig,
    spaces: dict[str, Any],
    monitor: str,
    class_folds: Sequence[Sequence[int]],
) -> float:
    trial_cfg = copy.deepcopy(cfg)
    for key, prior in spaces.items():
        OmegaConf.update(trial_cfg, key, suggest(trial, key, prior), merge=False)
    scores = []
    for fold, classes in enumerate(class_folds or [None]):
        fold_cfg = copy.deepcopy(trial_cfg)
        if classes is not None:
            OmegaConf.update(fold_cfg, "dataset.val_classes", list(classes), merge=False)
        callbacks = [ReportToTrial(trial, monitor)] if fold == 0 else []
        try:
            metrics = fit_for_validation(fold_cfg, callbacks=callbacks)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded, and the study goes on
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            raise
        value = metrics.get(monitor)
        if value is None or not math.isfinite(value):
            message = f"no finite {monitor} after training (got {value})"
            trial.set_user_attr("error", message)
            raise ValueError(message)
        scores.append(value)
    return sum(scores) / len(scores)


def _tuned(study: optuna.Study, parameters: tuple[str, ...]) -> Tuned:
    spent = spent_trials(study)
    trials = [
        {
            "trial": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "epochs": len(trial.intermediate_values),
            **trial.params,
            "error": trial.user_attrs.get("error", ""),
        }
        for trial in spent
    ]
    completed = [trial for trial in spent if trial.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return Tuned(best_params={}, best_value=None, trials=trials, tuned_parameters=parameters)
    best = study.best_trial
    return Tuned(best_params=dict(best.params), best_value=best.value, trials=trials, tuned_parameters=parameters)
