"""``lossforge benchmark``: the fair comparison protocol end to end, at the tiny budget, into SQLite (MLflow's
store and Optuna's)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import optuna
import pytest
import torch
from helpers import child_env, run_lossforge
from mlflow import MlflowClient
from torch import Tensor, nn

from lossforge.contract import Task
from lossforge.protocol.plan import Budget, Entry
from lossforge.protocol.report import print_comparison
from lossforge.protocol.runner import COMPARISON, STAGE, Settings, run_protocol
from lossforge.registry import LOSSES

pytestmark = pytest.mark.slow

BASE = ("dataset=regression_outliers", "model.hidden=[8]")
TINY = Budget(trials=2, seeds=2, max_epochs=2)


def runs_of(client: MlflowClient, filter_string: str) -> list:
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, filter_string=filter_string)


def test_the_protocol_tunes_alike_retrains_k_seeds_and_logs_a_verdict(
    tmp_path: Path, default_store: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    comparison = run_protocol(
        Settings(overrides=BASE, entries=(Entry("l1"), Entry("l2")), budget=TINY, baseline="l2", name="outliers"),
        base_dir=tmp_path,
    )
    assert comparison.task == Task.REGRESSION and comparison.metric == "test/mae"
    client = MlflowClient(default_store)

    parent = client.get_run(comparison.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[COMPARISON] == "outliers"
    assert comparison.experiment_id == parent.info.experiment_id
    print_comparison(comparison)  # what the command prints at its end: its dashboard line opens this comparison
    assert f"--run {comparison.run_id}" in capsys.readouterr().out
    assert parent.data.params["trials"] == "2" and parent.data.params["seeds"] == "2"
    studies = runs_of(client, f"tags.`mlflow.parentRunId` = '{comparison.run_id}'")
    assert sorted(run.data.tags["entry"] for run in studies) == ["l1", "l2"]
    for study in studies:
        assert study.info.status == "FINISHED" and study.data.tags[STAGE] == "study"
        assert study.data.tags["lossforge.trials.complete"] == "2"  # the same budget for every loss
        trials = client.download_artifacts(study.info.run_id, "trials.csv", str(tmp_path / study.info.run_id))
        assert len(Path(trials).read_text().strip().splitlines()) == 1 + 2
        seeds = runs_of(client, f"tags.`mlflow.parentRunId` = '{study.info.run_id}'")
        assert sorted(run.data.tags["lossforge.protocol.seed"] for run in seeds) == ["0", "1"]
        for run in seeds:  # each a full run: its own config, evaluated once on test
            assert run.info.status == "FINISHED" and "test/mae" in run.data.metrics
            assert run.data.params["seed"] == run.data.tags["lossforge.protocol.seed"]
    # The validation split alone chose the configuration: no trial ever reached the test split.
    assert all(not key.startswith("test/") for study in studies for key in study.data.metrics)

    verdict = json.loads(
        Path(client.download_artifacts(comparison.run_id, "comparison/table.json", str(tmp_path))).read_text()
    )
    rows = {(row["group"], row["metric"]): row for row in verdict}
    l1 = rows[("l1", "test/mae")]
    for field in ("n", "mean", "ci_low", "ci_high", "baseline", "difference", "p_value", "p_adjusted", "verdict"):
        assert field in l1
    assert l1["n"] == 2 and l1["baseline"] == "l2"
    assert l1["verdict"].startswith("too few runs")  # two seeds cannot support any verdict, and it says so
    artifacts = {item.path for item in client.list_artifacts(comparison.run_id, "comparison")}
    assert {"comparison/table.md", "comparison/table.csv", "comparison/plot.png"} <= artifacts
    assert "l1/test/mae" in parent.data.metrics  # the runs table shows each loss's mean

    # Re-running the same comparison reuses every study and seed run: nothing trains again, and it says so.
    with caplog.at_level(logging.INFO, logger="lossforge.protocol"):
        again = run_protocol(
            Settings(overrides=BASE, entries=(Entry("l1"), Entry("l2")), budget=TINY, baseline="l2", name="outliers"),
            base_dir=tmp_path,
        )
    assert again.run_id == comparison.run_id
    assert "resume   l1: 2/2 trials and 2/2 seeds already finished" in caplog.messages
    assert not [message for message in caplog.messages if message.startswith(("final    ", "tune     outliers/"))]
    assert len(runs_of(client, f"tags.`{STAGE}` = 'final'")) == 4


class ExplodingLoss(nn.Module):
    """A plugin loss that always gives NaN: every one of its trials fails."""

    tasks: ClassVar[tuple[str, ...]] = ("regression",)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return (prediction - target).abs().mean() * torch.tensor(float("nan"))


@pytest.fixture
def exploding_loss() -> Iterator[str]:
    LOSSES.register("exploding", ExplodingLoss, distribution="lossforge-test")
    yield "exploding"
    LOSSES.refresh()


def test_a_loss_whose_trials_all_fail_is_reported_failed_not_dropped(
    tmp_path: Path, default_store: str, exploding_loss: str
) -> None:
    settings = Settings(overrides=BASE, entries=(Entry("l2"), Entry(exploding_loss)), budget=TINY, name="fails")
    comparison = run_protocol(settings, base_dir=tmp_path)
    failed = {row["group"]: row for row in comparison.failed}
    assert set(failed) == {exploding_loss} and failed[exploding_loss]["verdict"] == "failed"
    assert "NonFiniteLossError" in failed[exploding_loss]["error"]
    client = MlflowClient(default_store)
    study = runs_of(client, f"tags.entry = '{exploding_loss}'")[0]
    assert study.info.status == "FAILED" and study.data.tags["lossforge.trials.fail"] == "2"
    assert client.get_run(comparison.run_id).info.status == "FINISHED"  # the other losses still compared
    verdict = Path(client.download_artifacts(comparison.run_id, "comparison/table.md", str(tmp_path))).read_text()
    assert f"Failed: {exploding_loss} — all 2 trials failed" in verdict
    logged = json.loads(
        Path(client.download_artifacts(comparison.run_id, "comparison/table.json", str(tmp_path / "j"))).read_text()
    )
    assert {"group": exploding_loss, "verdict": "failed"}.items() <= logged[-1].items()


def _trials(storage: str, study: str, state: optuna.trial.TrialState) -> list[tuple]:
    """``(number, params, value)`` of the study's trials in ``state``, read with Optuna as any user would."""
    from filelock import FileLock

    path = Path(storage.removeprefix("sqlite:///"))
    if not path.is_file():
        return []
    try:
        with FileLock(f"{path}.lock"):  # opening a storage creates its tables: not while lossforge creates them
            loaded = optuna.load_study(study_name=study, storage=storage)
    except KeyError:  # not created yet
        return []
    return [(trial.number, trial.params, trial.value) for trial in loaded.get_trials(states=(state,))]


def test_a_killed_comparison_resumes_with_the_trials_it_had(tmp_path: Path, default_store: str) -> None:
    command = [
        sys.executable, "-m", "lossforge", "benchmark", *BASE, "trainer.max_epochs=60",
        "--losses", "huber", "--trials", "3", "--seeds", "1", "--no-pruner", "--name", "killed",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its worker processes with it, killed together below
    )
    storage = f"sqlite:///{tmp_path / 'outputs' / 'tuning.db'}"
    deadline = time.monotonic() + 300
    first: tuple | None = None
    while first is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        finished = _trials(storage, "killed/huber", optuna.trial.TrialState.COMPLETE)
        running = _trials(storage, "killed/huber", optuna.trial.TrialState.RUNNING)
        first = finished[0] if finished and running else None  # killed while its second trial trains
    assert first is not None, f"no trial finished before the deadline: {process.stderr and process.stderr.read()}"
    # As hard as it gets, the command and its workers at once: nothing can clean up (trial 1 is left RUNNING).
    # (A worker whose command alone is killed takes no further piece: tests/unit/test_protocol_progress.py.)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    result = run_lossforge(tmp_path, "benchmark", *BASE, "trainer.max_epochs=60", "--losses", "huber", "--trials", "3",
                           "--seeds", "1", "--no-pruner", "--name", "killed")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "killed/huber: trial 1's process stopped before it did: not counted, run again" in result.stderr
    assert "huber: continues its study, 1 of 3 trials done" in result.stderr
    trials = _trials(storage, "killed/huber", optuna.trial.TrialState.COMPLETE)
    assert len(trials) == 3 and trials[0] == first  # the finished trial was kept, not run again: exactly 3
    (interrupted,) = _trials(storage, "killed/huber", optuna.trial.TrialState.FAIL)
    assert interrupted[0] == 1  # Optuna's record of the killed trial: failed, marked interrupted, not counted
    client = MlflowClient(default_store)
    comparisons = runs_of(client, f"tags.`{COMPARISON}` = 'killed' and tags.`{STAGE}` = 'comparison'")
    assert len(comparisons) == 1 and comparisons[0].info.status == "FINISHED"
    assert all(run.info.status == "FINISHED" for run in runs_of(client, f"tags.`{COMPARISON}` = 'killed'"))


def _results(tracking_uri: str, storage: str, name: str, entries: tuple[str, ...]) -> dict[str, Any]:
    """What a comparison chose and measured, read from the stores: each study's trials (number, state,
    parameters, value) and each seed run's test metrics."""
    studies = {}
    for entry in entries:
        study = optuna.load_study(study_name=f"{name}/{entry}", storage=storage)
        studies[entry] = [(t.number, t.state.name, t.params, t.value) for t in study.get_trials(deepcopy=False)]
    client = MlflowClient(tracking_uri)
    finals = runs_of(client, f"tags.`{COMPARISON}` = '{name}' and tags.`{STAGE}` = 'final'")
    seeds = {
        (run.data.tags["entry"], run.data.tags["lossforge.protocol.seed"]): {
            key: value for key, value in run.data.metrics.items() if key.startswith("test/")
        }
        for run in finals
    }
    return {"studies": studies, "seeds": seeds, "statuses": sorted(run.info.status for run in finals)}


def _running_seed_run(tracking_uri: str, name: str, *, besides: int) -> int | None:
    """The process id of a worker other than ``besides`` that trains a seed run of comparison ``name`` now."""
    try:
        runs = runs_of(MlflowClient(tracking_uri), f"tags.`{COMPARISON}` = '{name}' and tags.`{STAGE}` = 'final'")
    except Exception:  # the store is busy
        return None
    pids = [int(run.data.tags["lossforge.pid"]) for run in runs if run.info.status == "RUNNING"]
    return next((pid for pid in pids if pid != besides), None)


def test_two_workers_give_one_workers_result_even_when_one_dies(tmp_path: Path, default_store: str) -> None:
    """`--workers 2` chooses the same hyperparameters and measures the same per-seed test metrics as one
    worker (this process) — compared from the stores — although one of its workers is killed (`kill -9`)
    while it trains a seed run: that run is marked killed and superseded, its seed trained again by the
    other worker, and the comparison finishes."""
    entries = ("l1", "huber")
    storage = f"sqlite:///{tmp_path / 'outputs' / 'tuning.db'}"
    run_protocol(
        Settings(overrides=BASE, entries=tuple(Entry(e) for e in entries), budget=TINY, name="one"), base_dir=tmp_path
    )
    command = [sys.executable, "-m", "lossforge", "benchmark", *BASE, "--losses", ",".join(entries),
               "--budget", "tiny", "--name", "two", "--workers", "2"]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, killed = time.monotonic() + 240, None
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        killed = _running_seed_run(default_store, "two", besides=process.pid)  # a worker, not the command
        time.sleep(0.1)
    assert killed is not None, f"no worker was seen training a seed run: {process.poll()}"
    os.kill(killed, signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    log = stderr.decode()
    assert process.returncode == 0, log[-3000:]
    assert "workers  2 processes on this machine, 1 torch thread(s) each" in log
    assert "ended with status -9" in log, log[-3000:]

    one, two = _results(default_store, storage, "one", entries), _results(default_store, storage, "two", entries)
    assert two["studies"] == one["studies"]  # the same trials, the same parameters and scores: the same choice
    assert two["seeds"] == one["seeds"] and len(two["seeds"]) == 4  # the same test metrics, seed by seed
    assert two["statuses"] == ["FINISHED"] * 4
    client = MlflowClient(default_store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    deleted = client.search_runs(
        experiments, f"tags.`{COMPARISON}` = 'two'", run_view_type=mlflow.entities.ViewType.DELETED_ONLY
    )
    assert [(run.info.status, run.data.tags["lossforge.outcome"]) for run in deleted] == [("KILLED", "superseded")], log


def test_two_commands_with_one_name_share_one_comparison(tmp_path: Path, default_store: str) -> None:
    """Two `lossforge benchmark` commands started at once with the same name join as workers of one
    comparison: one comparison run, one study run, exactly the budgeted trials, each seed trained once."""
    command = [sys.executable, "-m", "lossforge", "benchmark", *BASE, "--losses", "l1", "--budget", "tiny",
               "--name", "joined", "--workers", "1"]  # fmt: skip
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    processes = [subprocess.Popen(command, cwd=tmp_path, env=child_env(), **pipes) for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()[-3000:]
    client = MlflowClient(default_store)
    runs = runs_of(client, f"tags.`{COMPARISON}` = 'joined'")
    stages = sorted(run.data.tags[STAGE] for run in runs)
    assert stages == ["comparison", "final", "final", "study"], stages
    assert sorted(run.data.tags["lossforge.protocol.seed"] for run in runs if run.data.tags[STAGE] == "final") == [
        "0",
        "1",
    ]
    assert all(run.info.status == "FINISHED" for run in runs)
    storage = f"sqlite:///{tmp_path / 'outputs' / 'tuning.db'}"
    assert (
        len(_trials(storage, "joined/l1", optuna.trial.TrialState.COMPLETE))
        + len(_trials(storage, "joined/l1", optuna.trial.TrialState.PRUNED))
        == 2
    )
