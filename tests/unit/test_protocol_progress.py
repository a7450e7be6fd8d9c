"""What a comparison shows while it runs and what a re-run says it reuses (`lossforge.protocol.progress`,
`lossforge.protocol.work`), and the seed ledger that lets workers share seed runs — on a real SQLite storage."""

from __future__ import annotations

import io
import time
from pathlib import Path

import optuna
import pytest

from lossforge.protocol.launch import describe
from lossforge.protocol.plan import Budget
from lossforge.protocol.progress import ProgressBoard
from lossforge.protocol.studies import prepare_storage
from lossforge.protocol.trials import INTERRUPTED
from lossforge.protocol.work import Job, Plan, entry_progress, reserve_seed, seeds_taken, work
from lossforge.training.pruning import open_storage, storage_url


def _plan(tmp_path: Path, storage: str) -> Plan:
    jobs = tuple(Job(label, (), f"cmp/{label}", f"run-{label}") for label in ("focal", "cross_entropy"))
    return Plan(
        name="cmp", jobs=jobs, budget=Budget(trials=2, seeds=2), storage=storage, monitor="val/f1_macro",
        metric="test/f1_macro", maximize=True, pruner=True, seed=0, class_folds=(), experiment_id="0",
        base_dir=tmp_path,
    )  # fmt: skip


def _fill(storage: str, plan: Plan) -> None:
    """focal: both trials (one pruned) and both seeds done; cross_entropy: one trial, no seed."""
    for job, trials, seeds in zip(plan.jobs, ([0.5, None], [0.25]), ([0, 1], []), strict=True):
        study = optuna.create_study(study_name=job.study_name, storage=open_storage(storage), direction="maximize")
        for value in trials:
            state = optuna.trial.TrialState.PRUNED if value is None else optuna.trial.TrialState.COMPLETE
            study.add_trial(optuna.trial.create_trial(state=state, value=value))
        ledger = optuna.create_study(study_name=job.ledger_name, storage=open_storage(storage), direction="maximize")
        for seed in seeds:
            ledger.add_trial(optuna.trial.create_trial(value=0.7, user_attrs={"seed": seed}))


def test_progress_and_the_re_run_line_are_read_from_the_storage(tmp_path: Path) -> None:
    storage = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    plan = _plan(tmp_path, storage)
    _fill(storage, plan)
    focal, cross_entropy = entry_progress(plan)
    assert (focal.trials, focal.pruned, focal.best, focal.seeds, focal.done) == (2, 1, 0.5, 2, True)
    assert (cross_entropy.trials, cross_entropy.seeds, cross_entropy.done) == (1, 0, False)
    assert describe([focal, cross_entropy]) == [
        "focal: 2/2 trials and 2/2 seeds already finished",
        "cross_entropy: 1/2 trials and 0/2 seeds already finished",
    ]

    shown = io.StringIO()
    with ProgressBoard(plan, interval_s=0.05, file=shown):
        time.sleep(0.2)
    text = shown.getvalue()
    assert "focal: 100%" in text and "4/4" in text  # trials plus seeds, with the rate tqdm estimates from
    assert "2/2 trials (1 pruned, 0 failed), best 0.5, 2/2 seeds" in text
    assert "cross_entropy:  25%" in text and "1/2 trials (0 pruned, 0 failed), best 0.25, 0/2 seeds" in text


def test_workers_never_train_one_seed_twice_and_take_over_a_dead_workers_seed(tmp_path: Path) -> None:
    storage = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    ledger = optuna.create_study(study_name="cmp/focal seeds", storage=open_storage(storage, heartbeat=(1, 2)))
    first = reserve_seed(ledger, 3, storage=storage, finished={1})  # seed 1 finished before the ledger existed
    second = reserve_seed(ledger, 3, storage=storage, finished={1})
    assert isinstance(first, tuple) and isinstance(second, tuple) and (first[1], second[1]) == (0, 2)
    assert reserve_seed(ledger, 3, storage=storage, finished={1}) is True  # all taken, two still training
    ledger.tell(first[0], 0.5)
    ledger._storage.record_heartbeat(second[0]._trial_id)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20  # the worker of seed 2 stopped beating: stale after the 2 s grace period
    while not isinstance(again := reserve_seed(ledger, 3, storage=storage, finished={1}), tuple):
        assert again is True and time.monotonic() < deadline, "seed 2 was never taken over"
        time.sleep(0.5)
    assert again[1] == 2  # run again, by whoever asks next
    assert ledger.trials[second[0].number].user_attrs[INTERRUPTED] is True
    ledger.tell(again[0], 0.75)
    assert reserve_seed(ledger, 3, storage=storage, finished={1}) is False
    assert seeds_taken(ledger, running=False) == {0, 2}


@pytest.mark.parametrize("workers, cores, threads", [(1, 2, 2), (2, 2, 1), (3, 16, 5), (4, 2, 1)])
def test_each_worker_gets_an_equal_share_of_the_cores(workers: int, cores: int, threads: int) -> None:
    from lossforge.protocol.work import threads_per_worker

    assert threads_per_worker(workers, cores) == threads


def test_a_worker_whose_command_is_gone_takes_no_further_piece(tmp_path: Path) -> None:
    # `kill -9` of the command alone: its other worker must not take over the pieces the command's own process
    # left (its watchdog ends it a moment later) — the command's re-run does, and says so.
    storage = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    plan = _plan(tmp_path, storage)
    assert work(plan, alive=lambda: False) == 0
    for job in plan.jobs:
        assert optuna.load_study(study_name=job.study_name, storage=storage).get_trials() == []
