"""What several test files share: the real command in a subprocess, the default MLflow store, a real server.

A plain module (not ``conftest.py``, which is not meant to be imported): ``tests/conftest.py`` puts ``tests/`` on
``sys.path``, so test files ``from helpers import …``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lossforge.distributed import free_port
from lossforge.tracking import DEFAULT_STORE

#: Variables a child lossforge process must not inherit from the developer's shell: a tracking URI would
#: send test runs to a real server; plugin switches, tracebacks and thread counts change what is tested.
LEAKY_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "LOSSFORGE_DISABLE_PLUGINS",
    "LOSSFORGE_BLOCK_PLUGINS",
    "LOSSFORGE_TRACEBACK",
    "OMP_NUM_THREADS",
)
HEALTH_TIMEOUT_S = 90.0  # an MLflow server answers in about 5 s on an idle machine; generous for a loaded CI runner


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``LEAKY_VARIABLES``, unbuffered, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in LEAKY_VARIABLES}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_python(
    cwd: Path, *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python <arguments>`` in ``cwd`` with :func:`child_env`, output captured as text."""
    command = [sys.executable, *arguments]
    return subprocess.run(command, cwd=cwd, env=child_env(env), capture_output=True, text=True, timeout=timeout)


def run_lossforge(
    cwd: Path, *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m lossforge <arguments>`` in ``cwd``."""
    return run_python(cwd, "-m", "lossforge", *arguments, env=env, timeout=timeout)


def default_store_runs(cwd: Path) -> tuple[object, list]:
    """The MLflow client of the default store under ``cwd`` and every run of its ``lossforge`` experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd / DEFAULT_STORE}")
    experiment = client.get_experiment_by_name("lossforge")
    return client, client.search_runs([experiment.experiment_id])


def sweep_runs(cwd: Path) -> tuple[object, list]:
    """The parent run of the default store's sweep and its children."""
    _, runs = default_store_runs(cwd)
    (parent,) = [r for r in runs if r.data.tags.get("lossforge.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def tuple_sets(tuples: Sequence[object]) -> list[set[tuple[int, ...]]]:
    """Mined index tuples as sets: triplets ``(a, p, n)`` as one set, pairs ``(a1, p, a2, n)`` as the
    positive and the negative set — to compare miners' output regardless of order."""
    groups = [tuples[:2], tuples[2:]] if len(tuples) == 4 else [tuples]
    return [set(zip(*(index.tolist() for index in group), strict=True)) for group in groups]


# -- a real MLflow server on 127.0.0.1 ---------------------------------------------------------------------
@dataclass
class MlflowServer:
    """A running MLflow server: where it answers and where it writes its log."""

    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The log's last lines, without the requests for the UI's static files that would bury the errors."""
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log written)"
        return "\n".join([line for line in text.splitlines() if "/static-files/" not in line][-lines:])


@contextmanager
def serve_mlflow(args: Sequence[str], directory: Path) -> Iterator[MlflowServer]:
    """Run ``mlflow <args> --port <free port>`` from ``directory`` until the block ends.

    ``args`` must bind ``--host 127.0.0.1``. Yields once ``/health`` answers; fails with the server's log tail
    if it exits or stays silent. Afterwards the server's whole process group is stopped.
    """
    port = free_port()
    server = MlflowServer(url=f"http://127.0.0.1:{port}", log=directory / f"mlflow-{args[0]}.log")
    # The GenAI job runner starts about seven huey worker processes; tracking needs none of them, and
    # without them the server is up in half the time on a two-core machine.
    env = child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
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
