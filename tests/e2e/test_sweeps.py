"""Sweeps end to end: a multirun is one parent MLflow run with a child per job; `lossforge compare` reads it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import child_env, default_store_runs, run_lossforge, run_python, sweep_runs

from lossforge.tracking import SWEEP_RECORD

TINY = ["trainer.max_epochs=1", "model.hidden=[16]", "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_a_two_job_sweep_lands_under_one_parent_and_compare_reads_it(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "-m", "loss=l1,huber", "dataset=regression_outliers", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED" and "loss=l1,huber" in parent.data.params["overrides"]
    assert sorted(c.data.params["loss.name"] for c in children) == ["huber", "l1"]
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.tags["hydra.job_num"] for c in children) == ["0", "1"]
    (record,) = (tmp_path / "outputs" / "multirun").glob(f"*/*/{SWEEP_RECORD}")  # how the jobs found the parent
    assert json.loads(record.read_text())["parent_run_id"] == parent.info.run_id

    compare = run_python(
        tmp_path,
        "-c",
        "import sys; from lossforge.cli import main; "
        "sys.argv = ['lossforge', 'compare', '--output', 'cmp.png']; main()",
    )
    assert compare.returncode == 0, compare.stderr[-2000:]
    assert "| l1 | finished | 1 |" in compare.stdout and "test/mae" in compare.stdout  # seeds pooled, named by loss
    # The task's baseline (L2 for regression), not cross_entropy; the sweep's last line says so.
    assert "No baseline: no group trained l2 (the task's baseline)" in result.stdout
    assert "(no baseline: name one with --baseline <group>)" in result.stdout
    assert "Logged to" not in compare.stdout  # compare only reads: what is logged is the sweep's own comparison
    assert (tmp_path / "cmp.png").stat().st_size > 0
    client, _ = default_store_runs(tmp_path)
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert logged == {"comparison/plot.png", "comparison/table.md", "comparison/table.csv", "comparison/table.json"}


@pytest.mark.slow
def test_an_eight_job_parallel_sweep_lands_eight_finished_children(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "-m", "hydra/launcher=parallel", "seed=0,1,2,3,4,5,6,7", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert sorted(c.data.params["seed"] for c in children) == [str(seed) for seed in range(8)]
    assert [c.info.status for c in children] == ["FINISHED"] * 8


def start_long_parallel_sweep(cwd: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """A 4-job parallel sweep (2 workers, long jobs) in a session of its own, returned once both workers'
    first runs are training (a signal before that, while a run is being set up, can leave it RUNNING — which
    ``sweep.resume=true`` reruns — in any launcher); its output so far."""
    command = [sys.executable, "-m", "lossforge", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    command += ["seed=0,1,2,3", "trainer.max_epochs=500", "model.hidden=[64]", "trainer.enable_progress_bar=false"]
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # A test run in the background (`pytest &`, a CI script's `&`) inherits an ignored SIGINT, and so would
        # the sweep: Python then installs no KeyboardInterrupt handler and the Ctrl-C below would do nothing.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert child.stdout is not None
    output, started = [], 0
    for line in child.stdout:
        output.append(line)
        started += "[lossforge][INFO] - mlflow   run " in line
        if started == 2:
            break
    else:
        raise AssertionError(f"the sweep ended before both workers started a run:\n{''.join(output)[-3000:]}")
    deadline = time.monotonic() + 120
    while not _both_training(cwd):  # inside Lightning's fit, where a signal ends a run KILLED
        assert child.poll() is None and time.monotonic() < deadline, "".join(output)[-3000:]
        time.sleep(0.2)
    return child, output


def _both_training(cwd: Path) -> bool:
    """Whether two child runs of the sweep have logged a metric (their first epoch)."""
    try:
        _, runs = default_store_runs(cwd)
    except Exception:  # the store is busy being written: ask again
        return False
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    return len(children) == 2 and all(run.data.metrics for run in children)


@pytest.mark.slow
def test_ctrl_c_stops_a_parallel_sweep_its_running_runs_killed_no_other_job_started(tmp_path: Path) -> None:
    child, output = start_long_parallel_sweep(tmp_path)
    try:
        os.killpg(child.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
        assert child.stdout is not None
        output.append(child.stdout.read())
        assert child.wait(timeout=120) == 128 + signal.SIGINT, "".join(output)[-3000:]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    printed = "".join(output)
    assert "lossforge: interrupted (Ctrl-C)" in printed and "sweep.resume=true" in printed
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FAILED"
    assert sorted(child.info.status for child in children) == ["KILLED", "KILLED"]  # jobs 2 and 3 never started
    assert sorted(child.data.params["seed"] for child in children) == ["0", "1"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["terminated", "killed"])
def test_workers_do_not_outlive_a_launcher_that_is_killed(tmp_path: Path, stop: signal.Signals) -> None:
    # Only the launcher gets the signal (``kill <pid>``): its workers notice, end their runs KILLED and exit
    # instead of waiting forever for a next job.
    child, _ = start_long_parallel_sweep(tmp_path)
    child.send_signal(stop)
    child.wait(timeout=60)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            try:
                os.killpg(child.pid, 0)
            except ProcessLookupError:
                break  # the fork server and both workers are gone
            time.sleep(0.2)
        else:
            raise AssertionError("the parallel launcher's workers outlived it by 90 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    _, children = sweep_runs(tmp_path)
    assert sorted(child.info.status for child in children) == ["KILLED", "KILLED"]
