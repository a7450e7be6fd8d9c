"""``lossforge ui`` starts the real MLflow dashboard on 127.0.0.1 and prints where the newest sweep is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import child_env
from mlflow import MlflowClient

from lossforge.distributed import free_port

pytestmark = pytest.mark.slow


def test_lossforge_ui_serves_the_store_and_prints_the_newest_sweep(tmp_path: Path, default_store: str) -> None:
    client = MlflowClient(default_store)
    experiment = client.create_experiment("lossforge")
    sweep = client.create_run(experiment, tags={"lossforge.sweep": "parent"}).info.run_id
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lossforge", "ui", "--port", str(port)],
        cwd=tmp_path,  # the default store, found as training finds it
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs/{sweep}" in first
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, "the dashboard exited"
                assert time.monotonic() < deadline, "the dashboard did not answer within 90 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200 and b"<html" in response.read(2000).lower()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
