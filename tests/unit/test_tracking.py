from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from lossforge.tracking import mlflow_run, params_for_mlflow, resolve_tracking_uri


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


@pytest.mark.parametrize(
    ("raised", "status"),
    [(None, "FINISHED"), (RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
)
def test_runs_always_end_with_a_status(tmp_path: Path, raised: BaseException | None, status: str) -> None:
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
    except (RuntimeError, KeyboardInterrupt):
        pass
    stored = MlflowClient(uri).get_run(run_ids[0])
    assert stored.info.status == status
    assert stored.data.tags["loss"] == "l1"
    if status == "FAILED":
        assert stored.data.tags["lossforge.error"] == "RuntimeError: boom"
