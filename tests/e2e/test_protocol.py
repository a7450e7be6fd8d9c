"""``lossforge benchmark``: the fair comparison protocol end to end, at the tiny budget, into SQLite (MLflow's
store and Optuna's)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import optuna
import pytest
import torch
from helpers import child_env, run_lossforge
from mlflow import MlflowClient
from torch import Tensor, nn

from lossforge.contract import Task
from lossforge.protocol.plan import Budget, Entry
from lossforge.protocol.runner import COMPARISON, STAGE, Settings, run_protocol
from lossforge.registry import LOSSES

pytestmark = pytest.mark.slow

BASE = ("dataset=regression_outliers", "model.hidden=[8]")
TINY = Budget(trials=2, seeds=2, max_epochs=2)


def runs_of(client: MlflowClient, filter_string: str) -> list:
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, filter_string=filter_string)


def test_the_protocol_tunes_alike_retrains_k_seeds_and_logs_a_verdict(tmp_path: Path, default_store: str) -> None:
    comparison = run_protocol(
        Settings(overrides=BASE, entries=(Entry("l1"), Entry("l2")), budget=TINY, baseline="l2", name="outliers"),
        base_dir=tmp_path,
    )
    assert comparison.task == Task.REGRESSION and comparison.metric == "test/mae"
    client = MlflowClient(default_store)

    parent = client.get_run(comparison.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[COMPARISON] == "outliers"
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

    # Re-running the same comparison reuses every study and seed run: nothing trains again.
    again = run_protocol(
        Settings(overrides=BASE, entries=(Entry("l1"), Entry("l2")), budget=TINY, baseline="l2", name="outliers"),
        base_dir=tmp_path,
    )
    assert again.run_id == comparison.run_id
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
        command, cwd=tmp_path, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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
    process.send_signal(signal.SIGKILL)  # as hard as it gets: nothing can clean up (trial 1 is left RUNNING)
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
