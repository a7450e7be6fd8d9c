"""A real ``mlflow server`` on 127.0.0.1: ``python -m lossforge`` logs to it over HTTP, and what landed is read
back through the server's REST API (run, status, params, tags, metric history, the ``config.yaml`` artifact).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from helpers import MlflowServer, run_lossforge, serve_mlflow

FAST = ["trainer.max_epochs=2", "model.hidden=[32]", "trainer.enable_progress_bar=false"]


def rest(server: MlflowServer, endpoint: str, body: dict[str, Any] | None = None, **query: str) -> dict[str, Any]:
    """``GET /api/2.0/<endpoint>?<query>``, or ``POST`` ``body`` as JSON; the decoded answer."""
    url = f"{server.url}/api/2.0/{endpoint}" + (f"?{urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[MlflowServer]:
    """The README's local server: SQLite backend, artifacts proxied by the server into its own folder."""
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    args = ["server", "--host", "127.0.0.1", "--backend-store-uri", f"sqlite:///{server_dir / 'server.db'}"]
    with serve_mlflow([*args, "--artifacts-destination", str(server_dir / "artifacts")], server_dir) as server:
        yield server


@pytest.mark.slow
def test_python_m_lossforge_logs_to_a_tracking_server(tmp_path: Path, tracking_server: MlflowServer) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # MAX_RETRIES: a broken server fails in seconds, not after minutes of backoff
    env = {"MLFLOW_TRACKING_URI": tracking_server.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    result = run_lossforge(work, *FAST, "run_name=served", env=env, timeout=300)
    assert result.returncode == 0, f"{result.stderr[-3000:]}\nServer log:\n{tracking_server.log_tail()}"
    assert not (work / "outputs" / "mlflow.db").exists(), "the run went to the local store, not the server"

    experiment = rest(tracking_server, "mlflow/experiments/get-by-name", experiment_name="lossforge")["experiment"]
    (run,) = rest(tracking_server, "mlflow/runs/search", body={"experiment_ids": [experiment["experiment_id"]]})["runs"]
    info = run["info"]
    assert info["status"] == "FINISHED" and info["run_name"] == "served"
    assert info["run_id"] in result.stdout
    params = {param["key"]: param["value"] for param in run["data"]["params"]}
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    assert params["loss.name"] == "cross_entropy" and params["trainer.max_epochs"] == "2"
    assert tags["loss.provider"].startswith("lossforge==")

    history = rest(tracking_server, "mlflow/metrics/get-history", run_id=info["run_id"], metric_key="val/accuracy")
    assert [metric["step"] for metric in history["metrics"]] == [1, 2]  # one per epoch, numbered from 1

    # Artifacts went through the server's proxy (mlflow-artifacts:/…) into its --artifacts-destination.
    files = rest(tracking_server, "mlflow/artifacts/list", run_id=info["run_id"])["files"]
    assert "config.yaml" in {file["path"] for file in files}
    assert info["artifact_uri"].startswith("mlflow-artifacts:/")
    artifact_dir = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    download = f"{tracking_server.url}/api/2.0/mlflow-artifacts/artifacts/{artifact_dir}/config.yaml"
    with urllib.request.urlopen(download, timeout=30) as response:
        config_yaml = response.read().decode()
    assert "run_name: served" in config_yaml
    assert (tmp_path / "server" / "artifacts" / artifact_dir / "config.yaml").read_text() == config_yaml
