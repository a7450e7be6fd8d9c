"""The protocol's studies in Optuna's own storage: creating it once, the old format moved aside, resume,
the exact budget and a changed search space (lossforge.protocol.tuning)."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import optuna
import pytest

from lossforge.protocol.tuning import (
    INTERRUPTED,
    PID_SPACE,
    WORKER,
    close_stale,
    open_study,
    prepare_storage,
    remaining_trials,
    spent_trials,
)
from lossforge.run_dirs import pid_space
from lossforge.training.pruning import storage_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _tpe(done: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=done)


def _study(storage: str, name: str = "digits:focal/focal", space: str = "interval(0, 5)") -> optuna.Study:
    return open_study(
        storage=storage,
        study_name=name,
        maximize=True,
        search={"loss.gamma": space},
        sampler=_tpe,
        pruner=optuna.pruners.NopPruner(),
    )


def test_the_default_storage_is_an_optuna_sqlite_file_that_optuna_itself_reads(tmp_path: Path) -> None:
    url = prepare_storage(storage_url("outputs/tuning.db", base_dir=tmp_path))
    assert url == f"sqlite:///{tmp_path / 'outputs' / 'tuning.db'}"
    study = _study(url)
    trial = study.ask({"loss.gamma": optuna.distributions.FloatDistribution(0, 5)})
    study.tell(trial, 0.5)
    (summary,) = optuna.get_all_study_summaries(url)
    assert summary.study_name == "digits:focal/focal" and summary.n_trials == 1
    assert optuna.load_study(study_name="digits:focal/focal", storage=url).best_value == 0.5


def test_an_old_trial_table_is_moved_aside_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "outputs" / "tuning.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as connection:  # lossforge's hand-written format before Optuna's storage
        connection.execute(
            "CREATE TABLE trials (study TEXT, number INTEGER, state TEXT, value REAL, params TEXT, "
            "distributions TEXT, intermediate TEXT, user_attrs TEXT, PRIMARY KEY (study, number))"
        )
        connection.execute("INSERT INTO trials VALUES ('c/focal', 0, 'COMPLETE', 0.5, '{}', '{}', '{}', '{}')")
    with caplog.at_level(logging.WARNING, logger="lossforge.protocol"):
        url = prepare_storage(storage_url(str(path)))
    aside = tmp_path / "outputs" / "tuning.before-optuna.db"
    assert [record.getMessage() for record in caplog.records] == [
        f"tune     {path} holds trials in lossforge's old format: moved aside to {aside.name}"
    ]
    with sqlite3.connect(aside) as connection:  # kept as it was
        assert connection.execute("SELECT study, value FROM trials").fetchall() == [("c/focal", 0.5)]
    assert optuna.get_all_study_summaries(url) == []  # a new, empty Optuna storage in its place
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lossforge.protocol"):
        prepare_storage(url)  # an Optuna storage is left alone
    assert caplog.records == [] and not (tmp_path / "outputs" / "tuning.before-optuna-1.db").exists()


def test_a_journal_file_is_a_storage_too(tmp_path: Path) -> None:
    assert storage_url(str(tmp_path / "study.log")) == f"journal:{tmp_path / 'study.log'}"
    url = prepare_storage(storage_url(f"journal:{tmp_path / 'shared' / 'study.jsonl'}"))
    study = _study(url)
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.25)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    reread = JournalStorage(JournalFileBackend(str(tmp_path / "shared" / "study.jsonl")))
    assert optuna.load_study(study_name="digits:focal/focal", storage=reread).best_value == 0.25


def _finish(study: optuna.Study, state: optuna.trial.TrialState) -> optuna.Trial:
    trial = study.ask({"loss.gamma": optuna.distributions.FloatDistribution(0, 5)})
    if state == optuna.trial.TrialState.COMPLETE:
        study.tell(trial, 0.5)
    elif state != optuna.trial.TrialState.RUNNING:
        study.tell(trial, state=state)
    return trial


def test_the_budget_counts_complete_pruned_and_failed_trials_but_not_interrupted_ones(tmp_path: Path) -> None:
    url = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    study = _study(url)
    states = optuna.trial.TrialState
    for state in (states.COMPLETE, states.PRUNED, states.FAIL, states.RUNNING):  # RUNNING: its process was killed
        _finish(study, state)
    assert remaining_trials(study, 5, label="focal") == 2  # the interrupted trial runs again
    (interrupted,) = [trial for trial in study.trials if trial.user_attrs.get(INTERRUPTED)]
    assert interrupted.number == 3 and interrupted.state == states.FAIL  # Optuna's record: failed, marked so
    assert [trial.number for trial in spent_trials(study)] == [0, 1, 2]
    assert remaining_trials(study, 3, label="focal") == 0  # finished: reused
    with pytest.raises(ValueError, match=r"already has 3 trials, more than the budget of 2: .*--trials"):
        remaining_trials(study, 2, label="focal")


@pytest.mark.skipif(pid_space() is None, reason="a pid space needs Linux's /proc")
def test_a_trial_whose_worker_on_this_machine_exited_is_run_again_without_waiting_for_its_heartbeat(
    tmp_path: Path,
) -> None:
    # kill -9 of a local worker: its trials are known dead at once, not after the heartbeat's grace (20 s).
    # A live worker's trial, and one from another machine or container (another pid space), are left alone.
    study = _study(prepare_storage(storage_url(str(tmp_path / "tuning.db"))))
    exited = subprocess.Popen(["true"])
    exited.wait()
    claims = {
        "exited here": (exited.pid, pid_space()),
        "alive here": (os.getppid(), pid_space()),
        "exited elsewhere": (exited.pid, "another-boot/pid:[1]"),
    }
    for worker, space in claims.values():
        trial = study.ask()
        trial.set_user_attr(WORKER, f"{socket.gethostname()}:{worker}")
        trial.set_user_attr(PID_SPACE, space)
    assert close_stale(study) == 1
    states = [(trial.state, trial.user_attrs.get(INTERRUPTED, False)) for trial in study.get_trials()]
    running = optuna.trial.TrialState.RUNNING
    assert states == [(optuna.trial.TrialState.FAIL, True), (running, False), (running, False)]


def _resumed_once(url: str) -> tuple[float, float]:
    first = _finish(_study(url), optuna.trial.TrialState.COMPLETE)
    resumed = _study(url)  # as a killed comparison re-run: a new process, the same seed
    assert resumed.direction == optuna.study.StudyDirection.MAXIMIZE and len(resumed.trials) == 1
    return first.params["loss.gamma"], _finish(resumed, optuna.trial.TrialState.COMPLETE).params["loss.gamma"]


def test_a_resumed_study_does_not_repeat_its_first_trials_and_resumes_alike(tmp_path: Path) -> None:
    first, after_resume = _resumed_once(prepare_storage(storage_url(str(tmp_path / "a.db"))))
    assert after_resume != first  # a sampler seeded as at the start would draw the first trial again
    assert _resumed_once(prepare_storage(storage_url(str(tmp_path / "b.db")))) == (first, after_resume)


def test_a_changed_search_space_is_refused_naming_how_to_start_afresh(tmp_path: Path) -> None:
    url = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    _study(url)
    with pytest.raises(ValueError) as refused:
        _study(url, space="interval(0, 10)")
    message = str(refused.value)
    assert "searched a different space (loss.gamma changed)" in message
    assert "--name" in message and "hydra.sweeper.study_name" in message
    assert f"optuna delete-study --study-name digits:focal/focal --storage {url}" in message
    _study(url, name="digits:focal/focal-wider", space="interval(0, 10)")  # a new name starts afresh


def test_each_finished_trial_prints_one_progress_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from lossforge.protocol.tuning import run_trials

    url = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    study = _study(url)

    def objective(trial: optuna.Trial) -> float:
        gamma = trial.suggest_float("loss.gamma", 0.0, 5.0)
        if trial.number == 1:
            raise FloatingPointError("nan")
        if trial.number == 2:
            raise optuna.TrialPruned()
        return {0: 0.5, 3: 0.75}[trial.number] + 0 * gamma

    with caplog.at_level(logging.INFO, logger="lossforge.protocol"):
        run_trials(study, objective, 4, storage=url, heartbeat_interval=None)
    lines = [record.getMessage() for record in caplog.records if "trials (" in record.getMessage()]
    assert [line.split(";")[0] for line in lines] == [
        f"tune     digits:focal/focal: trial {number} {state}"
        for number, state in enumerate(("COMPLETE", "FAIL", "PRUNED", "COMPLETE"))
    ]
    assert "; 4/4 trials (1 pruned, 1 failed), best 0.75; ~0 s left" in lines[-1]
    assert "; 1/4 trials (0 pruned, 0 failed), best 0.5; " in lines[0]
