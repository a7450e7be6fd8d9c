"""A team's tracking server: ``mlflow server`` on PostgreSQL with MLflow's basic-auth app
(``servers.mlflow_auth_server``). Sweeps log to it over HTTP with a user's credentials from
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``; what landed is read back through its REST API."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from helpers import QUICK_RUN, child_env, run_lossforge
from servers import AuthServer, unauthenticated_status

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

EPOCH_LINE = re.compile(r"epoch +\d+/\d+")  # what a run prints as it trains (training/progress.py)


def credentials(server: AuthServer, user: tuple[str, str]) -> dict[str, str]:
    """The environment of a team member's shell: the server's URL and their credentials."""
    return {
        "MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_USERNAME": user[0],
        "MLFLOW_TRACKING_PASSWORD": user[1],
    }


def experiment_runs(server: AuthServer, name: str) -> list[dict[str, Any]]:
    """Every run of experiment ``name`` on ``server`` (read as its admin), as the REST API returns them."""
    answer = server.request(f"mlflow/experiments/get-by-name?experiment_name={name}", user=server.admin)
    experiment_id = answer["experiment"]["experiment_id"]  # type: ignore[index]
    body = {"experiment_ids": [experiment_id], "max_results": 1000, "run_view_type": "ALL"}
    return server.request("mlflow/runs/search", body, user=server.admin).get("runs", [])  # type: ignore[union-attr]


def tags_of(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def history(server: AuthServer, run_id: str, key: str) -> list[int]:
    """The steps at which ``key`` was logged in run ``run_id``."""
    answer = server.request(f"mlflow/metrics/get-history?run_id={run_id}&metric_key={key}", user=server.admin)
    return sorted(int(metric["step"]) for metric in answer.get("metrics", []))  # type: ignore[union-attr]


def files_containing(root: Path, secret: str) -> list[Path]:
    """Files under ``root`` whose bytes contain ``secret``."""
    return [path for path in root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]


def test_the_server_needs_credentials(team_server: AuthServer) -> None:
    assert unauthenticated_status(team_server.url) == 401


def test_an_eight_job_parallel_sweep_logs_every_run_and_no_password(
    tmp_path: Path, team_server: AuthServer, team_user: tuple[str, str]
) -> None:
    """8/8 children FINISHED under one parent, each with its whole per-epoch history; the password is nowhere
    in what the runs recorded (params, tags, artifacts) nor in the sweep's logs and output."""
    experiment = "team-sweep"
    result = run_lossforge(
        tmp_path,
        "-m",
        "hydra/launcher=parallel",
        "seed=0,1,2,3,4,5,6,7",
        *QUICK_RUN,
        "trainer.max_epochs=2",
        f"logger.experiment={experiment}",
        "hydra.sweep.dir=sweep",
        env=credentials(team_server, team_user),
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}\n{team_server.log_tail()}"
    assert not (tmp_path / "outputs" / "mlflow.db").exists(), "the runs went to a local store, not the server"

    runs = experiment_runs(team_server, experiment)
    (parent,) = [run for run in runs if tags_of(run).get("lossforge.sweep") == "parent"]
    children = [run for run in runs if tags_of(run).get("mlflow.parentRunId") == parent["info"]["run_id"]]
    assert len(children) == 8 and len(runs) == 9
    assert sorted(int(tags_of(child)["hydra.job_num"]) for child in children) == list(range(8))
    assert {child["info"]["status"] for child in children} == {"FINISHED"}
    assert parent["info"]["status"] == "FINISHED"
    for child in children:
        per_epoch = [
            metric["key"] for metric in child["data"]["metrics"] if metric["key"].startswith(("train/", "val/"))
        ]
        assert per_epoch, child["data"]["metrics"]
        for key in per_epoch:
            assert history(team_server, child["info"]["run_id"], key) == [1, 2], key  # epochs from 1

    password = team_user[1]
    for run in runs:
        recorded = [*(p["value"] for p in run["data"].get("params", [])), *tags_of(run).values()]
        assert not [value for value in recorded if password in value], run["info"]["run_name"]
    assert not files_containing(team_server.directory / "artifacts", password)
    assert not files_containing(tmp_path, password), "the password reached the sweep's files"
    assert password not in result.stdout + result.stderr


def test_a_wrong_password_fails_before_training(
    tmp_path: Path, team_server: AuthServer, team_user: tuple[str, str]
) -> None:
    wrong = "not-the-password"
    env = credentials(team_server, (team_user[0], wrong))
    single = run_lossforge(tmp_path, *QUICK_RUN, "logger.experiment=team-refused", env=env, timeout=120)
    assert single.returncode == 1
    assert f"refused the credentials of user '{team_user[0]}' (HTTP 401)" in single.stderr, single.stderr[-3000:]
    assert "MLFLOW_TRACKING_PASSWORD" in single.stderr and "Nothing was trained" in single.stderr
    assert not EPOCH_LINE.search(single.stdout) and "Traceback" not in single.stderr

    sweep = run_lossforge(
        tmp_path, "-m", "seed=0,1", *QUICK_RUN, "logger.experiment=team-refused", env=env, timeout=120
    )
    assert sweep.returncode == 1
    assert f"refused the credentials of user '{team_user[0]}' (HTTP 401)" in sweep.stderr, sweep.stderr[-3000:]
    assert not EPOCH_LINE.search(sweep.stdout)
    with pytest.raises(urllib.error.HTTPError, match="404"):  # no run was made: not even the experiment exists
        experiment_runs(team_server, "team-refused")
    for output in (single.stdout + single.stderr, sweep.stdout + sweep.stderr):
        assert wrong not in output and team_user[1] not in output


#: How long lossforge lets a request to a tracking server that stopped answering take, at most, before the
#: run fails (``lossforge.tracking.store.HTTP_LIMITS``: about 10 s per request for a refused connection; a
#: failing run makes a few).
SERVER_GONE_BOUND_S = 120


def test_a_server_stopped_mid_sweep_fails_the_jobs_clearly_and_resume_completes_the_sweep(
    tmp_path: Path, team_server: AuthServer, team_user: tuple[str, str]
) -> None:
    experiment = "team-outage"
    # The default model (512-512) for 40 epochs: training still runs seconds after its first epoch is logged.
    sweep = (
        "-m",
        "seed=0,1",
        *QUICK_RUN,
        "model.hidden=[512,512]",
        "trainer.max_epochs=40",
        f"logger.experiment={experiment}",
    )
    env = child_env(credentials(team_server, team_user))
    command = [sys.executable, "-m", "lossforge", *sweep, "hydra.sweep.dir=sweep"]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            deadline = time.monotonic() + 180
            while not _training(team_server, experiment):
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the first job did not start training within 180 s"
                time.sleep(0.5)
            with team_server.stopped():
                stopped_at = time.monotonic()
                stdout, stderr = process.communicate(timeout=SERVER_GONE_BOUND_S)
                failed_after_s = time.monotonic() - stopped_at
        finally:
            if process.poll() is None:
                process.kill()
    output = stdout + stderr
    (tmp_path / "outage.log").write_text(output)
    assert failed_after_s < SERVER_GONE_BOUND_S
    # The sweep's end cannot reach the server either: one line saying how to go on, and a failing status.
    assert process.returncode == 1, output[-4000:]
    gone = (
        f"lossforge: error: tracking server {team_server.url} did not answer at the sweep's end; "
        "rerun the same command with sweep.resume=true once it is back"
    )
    assert stderr.count(gone) == 1, stderr[-4000:]
    assert "Error in atexit" not in stderr, stderr[-4000:]
    assert "Traceback" not in output, output[-4000:]  # an outage is the environment: one line per job
    # Each job fails with one line naming the server: job 0 mid-training (its next request), job 1 before
    # training (check_reachable).
    for seed in (0, 1):
        assert re.search(rf"seed{seed}: FAILED .*{re.escape(team_server.url)}", stdout), output[-4000:]
    assert team_user[1] not in output

    resumed = run_lossforge(
        tmp_path, *sweep, "hydra.sweep.dir=sweep", "sweep.resume=true", env=credentials(team_server, team_user)
    )
    assert resumed.returncode == 0, f"{resumed.stdout[-3000:]}\n{resumed.stderr[-3000:]}"
    runs = experiment_runs(team_server, experiment)
    (parent,) = [run for run in runs if tags_of(run).get("lossforge.sweep") == "parent"]
    live = [
        run
        for run in runs
        if tags_of(run).get("mlflow.parentRunId") == parent["info"]["run_id"]
        and run["info"]["lifecycle_stage"] == "active"
    ]
    assert sorted(tags_of(run)["hydra.job_num"] for run in live) == ["0", "1"]
    assert {run["info"]["status"] for run in live} == {"FINISHED"} and parent["info"]["status"] == "FINISHED"


def _training(server: AuthServer, experiment: str) -> bool:
    """Whether a run of ``experiment`` has logged its first epoch."""
    try:
        runs = experiment_runs(server, experiment)
    except Exception:  # the experiment does not exist yet
        return False
    return any(
        run["info"]["status"] == "RUNNING" and any(m["key"].startswith("val/") for m in run["data"].get("metrics", []))
        for run in runs
    )
