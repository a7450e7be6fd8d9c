"""A study's trials as a budget shared by workers: exactly `budget` trials, reserved under the storage's lock,
each with its worker's name and heartbeat, and one progress line per finished trial.

Complete, pruned and failed trials count; a trial whose process never finished it (`kill -9`, a lost node) is
marked failed with `lossforge.interrupted`, not counted, and run again — at once when its worker ran on this
machine, once its heartbeat has stopped when it ran elsewhere.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna

from lossforge.protocol.studies import storage_lock
from lossforge.run_dirs import pid_space, process_alive

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


def worker_name() -> str:
    """This worker, as its trials record it: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(trial: optuna.Trial) -> None:
    """Record on `trial` which worker runs it ([WORKER][lossforge.protocol.trials.WORKER], and the space its
    pid is valid in, [PID_SPACE][lossforge.protocol.trials.PID_SPACE])."""
    trial.set_user_attr(WORKER, worker_name())
    space = pid_space()
    if space is not None:
        trial.set_user_attr(PID_SPACE, space)


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
    [reserve_trial][lossforge.protocol.trials.reserve_trial]."""
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
    """Reserve one trial of `study` ([reserve_trial][lossforge.protocol.trials.reserve_trial]) and run it,
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
