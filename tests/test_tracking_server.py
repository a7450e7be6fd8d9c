"""A real ``mlflow server`` on 127.0.0.1: ``python -m lossforge`` logs to it over HTTP, and what landed is read
back through the server's REST API (run, status, params, tags, metric history, the ``config.yaml`` artifact).

``serve_mlflow`` is shared with ``test_dashboard.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

FAST = ["trainer.max_epochs=2", "model.hidden=[32]", "trainer.enable_progress_bar=false"]
HEALTH_TIMEOUT_S = 90.0  # about 5 s on an idle machine; generous for a loaded CI runner


@dataclass
class MlflowServer:
    """A running MLflow server: where it answers and where it writes its log."""

    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The log's last lines, without the requests for the UI's static files that would bury the errors."""
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log written)"
        return "\n".join([line for line in text.splitlines() if "/static-files/" not in line][-lines:])


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_mlflow(args: Sequence[str], directory: Path) -> Iterator[MlflowServer]:
    """Run ``mlflow <args> --port <free port>`` from ``directory`` until the block ends.

    ``args`` must bind ``--host 127.0.0.1``. Yields once ``/health`` answers; fails with the server's log tail
    if it exits or stays silent. Afterwards the server's whole process group is stopped.
    """
    port = free_port()
    server = MlflowServer(url=f"http://127.0.0.1:{port}", log=directory / f"mlflow-{args[0]}.log")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    # The GenAI job runner starts about seven huey worker processes; tracking needs none of them, and
    # without them the server is up in half the time on a two-core machine.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [sys.executable, "-m", "mlflow", *args, "--port", str(port), "--workers", "1"]
    with server.log.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_healthy(server, process)
        yield server
    finally:
        _stop_process_group(process)


def _wait_until_healthy(server: MlflowServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"`{' '.join(map(str, process.args))}` exited with {process.returncode} before answering "
                f"{server.url}/health. Server log:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError, connection reset, timeout are all OSErrors)
            pass
        time.sleep(0.2)
    pytest.fail(f"MLflow did not answer {server.url}/health within {HEALTH_TIMEOUT_S:.0f} s. Log:\n{server.log_tail()}")


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (the CLI, uvicorn, any workers), SIGKILL what outlives a grace period."""
    for sig, grace_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            process.poll()  # reap the group leader: a zombie would keep the group "alive"
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


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
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": tracking_server.url}
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "2"  # a broken server fails in seconds, not after minutes of backoff
    result = subprocess.run(
        [sys.executable, "-m", "lossforge", *FAST, "run_name=served"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
    assert [metric["step"] for metric in history["metrics"]] == [0, 1]  # one per epoch

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
