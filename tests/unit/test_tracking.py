from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lossforge.tracking import SweepJob, mlflow_run, params_for_mlflow, resolve_tracking_uri, run_context_tags


def test_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, base_dir=tmp_path) == f"sqlite:///{tmp_path / 'outputs/mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert resolve_tracking_uri(None, base_dir=tmp_path) == "http://127.0.0.1:1"
    assert resolve_tracking_uri("sqlite:///x.db", base_dir=tmp_path) == "sqlite:///x.db"


def test_long_values_are_kept_in_the_config_and_noted() -> None:
    params, too_long = params_for_mlflow({"a": {"b": "x" * 7000}, "c": None})
    assert too_long == ["a.b"]
    assert {p.key: p.value for p in params} == {"a.b": "<7000 characters: see config.yaml>", "c": "null"}


class Diverged(FloatingPointError):
    outcome = "diverged"  # as the NaN guard's error says how it ends a run


@pytest.mark.parametrize(
    ("raised", "status", "outcome"),
    [
        (None, "FINISHED", "finished"),
        (RuntimeError("boom"), "FAILED", "failed"),
        (Diverged("nan"), "FAILED", "diverged"),
        (KeyboardInterrupt(), "KILLED", "killed"),
        (SystemExit(130), "KILLED", "killed"),
    ],
)
def test_runs_always_end_with_a_status_and_an_outcome(
    tmp_path: Path, raised: BaseException | None, status: str, outcome: str
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_ids = []
    try:
        with mlflow_run(
            tracking_uri=uri,
            experiment="t",
            run_name="r",
            tags={"loss": "l1"},
            artifact_location=(tmp_path / "artifacts").as_uri(),
        ) as run:
            run_ids.append(run.run_id)
            run.log_metrics({"val/loss": 1.0}, step=0)
            if raised is not None:
                raise raised
    except (RuntimeError, FloatingPointError, KeyboardInterrupt, SystemExit):
        pass
    stored = MlflowClient(uri).get_run(run_ids[0])
    assert stored.info.status == status
    assert stored.data.tags["lossforge.outcome"] == outcome
    assert stored.data.tags["loss"] == "l1"
    if raised is not None and status == "FAILED":
        assert stored.data.tags["lossforge.error"] == f"{type(raised).__name__}: {raised}"


def test_a_run_outside_a_sweep_is_tagged_with_its_commit_only() -> None:
    tags = run_context_tags(None)
    assert set(tags) <= {"lossforge.git_commit"}


def test_a_sweep_job_tags_its_sweep_job_and_parent_run() -> None:
    job = SweepJob(sweep_dir="outputs/multirun/x", job_num=3, overrides=("loss=l1", "seed=2"), parent_run_id="abc")
    tags = run_context_tags(job)
    tags.pop("lossforge.git_commit", None)
    assert tags == {
        "hydra.sweep_dir": "outputs/multirun/x",
        "hydra.job_num": "3",
        "hydra.overrides": "loss=l1 seed=2",
        "mlflow.parentRunId": "abc",
    }
    assert "mlflow.parentRunId" not in run_context_tags(dataclasses.replace(job, parent_run_id=None))


@pytest.mark.parametrize(
    "race",
    [
        "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest",
        'duplicate key value violates unique constraint "dataset_pk"',  # PostgreSQL behind a server
    ],
)
def test_a_dataset_inserted_by_a_parallel_job_at_the_same_moment_is_logged_on_the_second_try(race: str) -> None:
    from mlflow.exceptions import MlflowException

    from lossforge.tracking.artifacts import log_inputs_once_more_on_a_race
    from lossforge.tracking.runs import RunHandle

    class RacingClient:
        def __init__(self, first_error: str) -> None:
            self.calls: list[str] = []
            self.first_error = first_error

        def log_inputs(self, run_id: str, datasets: list[object]) -> None:
            self.calls.append(run_id)
            if len(self.calls) == 1:
                raise MlflowException(self.first_error)

    client = RacingClient(race)
    run = RunHandle(client=client, run_id="r1", experiment_id="1", tracking_uri="sqlite://")  # type: ignore[arg-type]
    log_inputs_once_more_on_a_race(run, [])
    assert client.calls == ["r1", "r1"]

    other = RacingClient("RESOURCE_DOES_NOT_EXIST: run r1 not found")  # not a race: not hidden
    with pytest.raises(MlflowException, match="not found"):
        log_inputs_once_more_on_a_race(RunHandle(other, "r1", "1", "sqlite://"), [])  # type: ignore[arg-type]
    assert other.calls == ["r1"]
