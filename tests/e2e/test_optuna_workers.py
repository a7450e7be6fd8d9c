"""Several worker processes share one study (lossforge.protocol.tuning): the storage is created once however
many start at once, the budget stays exact however they interleave, a failed trial counts, and a trial whose
worker died (no heartbeat) does not count and is run again. Real processes on a real SQLite storage; tiny
trials (the time goes to each process importing the training stack)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import optuna
import pytest

from lossforge.protocol.studies import open_study, prepare_storage
from lossforge.protocol.trials import INTERRUPTED, run_trials, spent_trials
from lossforge.training.pruning import open_storage, storage_url

pytestmark = pytest.mark.slow

BUDGET = 7
BEAT = (1, 3)  # heartbeat every second; silent for 3 s: the worker is dead


def _open(url: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return open_study(
        storage=url,
        study_name="shared",
        maximize=True,
        search={"x": "interval(0, 1)"},
        sampler=lambda done: optuna.samplers.RandomSampler(seed=os.getpid()),
        pruner=optuna.pruners.NopPruner(),
        heartbeat=BEAT,
    )


def _worker(url: str, start: multiprocessing.synchronize.Barrier, dies: bool) -> None:  # type: ignore[name-defined]
    study = _open(url)
    start.wait()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if dies:
            time.sleep(1.5)  # a heartbeat or two, then gone without a word, as under kill -9 or the OOM killer
            os._exit(9)
        time.sleep(0.02)
        if trial.number % 4 == 1:
            raise FloatingPointError("nan")  # a failed trial counts
        if trial.number % 4 == 2:
            raise optuna.TrialPruned()
        return x

    run_trials(study, objective, BUDGET, storage=url, heartbeat_interval=BEAT[0])


def _run_workers(tmp_path: Path, workers: int, dying: int = 0) -> optuna.Study:
    url = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    _open(url)  # created once, before the workers start (as the command that starts them does)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(workers + dying)
    processes = [context.Process(target=_worker, args=(url, start, False)) for _ in range(workers)]
    processes += [context.Process(target=_worker, args=(url, start, True)) for _ in range(dying)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)  # each worker imports the training stack first
    assert [process.exitcode for process in processes] == [0] * workers + [9] * dying
    return optuna.load_study(study_name="shared", storage=url)


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_sharing_a_study_run_exactly_its_budget(tmp_path: Path, workers: int) -> None:
    study = _run_workers(tmp_path, workers)
    states = optuna.trial.TrialState
    assert len(study.trials) == BUDGET == len(spent_trials(study))  # not one more, however they interleaved
    assert {trial.state for trial in study.trials} == {states.COMPLETE, states.FAIL, states.PRUNED}


def test_a_dead_workers_trial_does_not_count_and_runs_again(tmp_path: Path) -> None:
    study = _run_workers(tmp_path, workers=2, dying=1)
    (interrupted,) = [trial for trial in study.trials if trial.user_attrs.get(INTERRUPTED)]
    assert interrupted.state == optuna.trial.TrialState.FAIL  # Optuna's record: failed, marked interrupted
    assert len(spent_trials(study)) == BUDGET and len(study.trials) == BUDGET + 1  # run again by the others
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def _prepare(url: str, start: multiprocessing.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    start.wait()
    prepare_storage(url)
    optuna.create_study(storage=open_storage(url), study_name="s", load_if_exists=True)


def test_workers_that_prepare_one_new_storage_at_once_all_succeed(tmp_path: Path) -> None:
    url = storage_url(str(tmp_path / "tuning.db"))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    workers = [context.Process(target=_prepare, args=(url, start)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)  # each imports the training stack first: slow on a busy machine
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert [summary.study_name for summary in optuna.get_all_study_summaries(url)] == ["s"]
