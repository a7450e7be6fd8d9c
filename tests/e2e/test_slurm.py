"""Sweeps and DDP on a real single-node SLURM cluster (``servers.slurm_cluster``: munged, slurmctld, slurmd on
this machine): submitit queues the jobs with ``sbatch``, ``srun`` starts their tasks, and what they record is
read back from the MLflow store."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import QUICK_RUN, child_env, default_store_runs, run_lossforge, sweep_runs
from servers import PostgresCluster, SlurmCluster

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def submitit_jobs(sweep_dir: Path) -> dict[str, list[str]]:
    """The SLURM jobs that ran for a sweep (several form a job array: ids ``<array>_<index>``) → the names of
    each one's files (``<id>_<task>_log.out``, ``<id>_<task>_result.pkl``, …)."""
    folders = [folder for folder in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+(_\d+)?", folder.name)]
    files = {folder.name: sorted(path.name for path in folder.iterdir()) for folder in folders}
    return {job: names for job, names in files.items() if any(name.endswith("_log.out") for name in names)}


def test_a_sweep_queues_one_slurm_job_per_run(tmp_path: Path, slurm: SlurmCluster, default_store: str) -> None:
    """The issue's command: two SLURM jobs, both run, one parent run with two FINISHED children."""
    result = run_lossforge(
        tmp_path,
        "-m",
        "hydra/launcher=submitit_slurm",
        "loss=l1,l2",
        "dataset=regression_outliers",
        *QUICK_RUN,
        "hydra.sweep.dir=sweep",
        env=slurm.env,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}\n{slurm.log_tails()}"

    jobs = submitit_jobs(tmp_path / "sweep")
    assert len(jobs) == 2, jobs
    for job_id, files in jobs.items():
        assert f"{job_id}_0_log.out" in files and f"{job_id}_0_result.pkl" in files, files
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert sorted(child.data.tags["loss"] for child in children) == ["l1", "l2"]
    assert [child.info.status for child in children] == ["FINISHED", "FINISHED"]
    logs = " ".join((tmp_path / "sweep" / ".submitit" / job / f"{job}_0_log.out").read_text() for job in jobs)
    assert all(child.info.run_id in logs for child in children), "each run was recorded by its own SLURM job"


def test_a_ddp_job_over_two_slurm_tasks_records_one_run(
    tmp_path: Path, slurm: SlurmCluster, default_store: str
) -> None:
    """``trainer=ddp_cpu`` as one SLURM job of two tasks (srun starts both; Lightning reads each rank from
    SLURM): one experiment trained together, one MLflow run, recorded by rank 0 only."""
    result = run_lossforge(
        tmp_path,
        "-m",
        "hydra/launcher=submitit_slurm_ddp",
        "trainer=ddp_cpu",
        "hydra.launcher.gpus_per_node=null",
        "hydra.launcher.cpus_per_task=1",
        "batch_size=32",
        *QUICK_RUN,
        "hydra.sweep.dir=sweep",
        env=slurm.env,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}\n{slurm.log_tails()}"

    ((job_id, files),) = submitit_jobs(tmp_path / "sweep").items()
    assert {f"{job_id}_0_log.out", f"{job_id}_1_log.out"} <= set(files), "srun started two tasks"
    parent, (child,) = sweep_runs(tmp_path)
    assert child.info.status == "FINISHED" and parent.info.status == "FINISHED"
    assert (
        child.data.tags["lossforge.device"].startswith("cpu") and "2 processes" in child.data.tags["lossforge.device"]
    )
    rank_logs = [
        (tmp_path / "sweep" / ".submitit" / job_id / f"{job_id}_{rank}_log.out").read_text() for rank in (0, 1)
    ]
    assert f"mlflow   run {child.info.run_id}" in rank_logs[0]
    assert "mlflow   run" not in rank_logs[1], "rank 1 recorded nothing"


def _running_run(cwd: Path) -> str | None:
    """The id of a sweep child in the default store under ``cwd`` that is RUNNING and has logged an epoch."""
    try:
        _, runs = default_store_runs(cwd)
    except Exception:  # the store or the experiment does not exist yet
        return None
    for run in runs:
        if run.info.status == "RUNNING" and "mlflow.parentRunId" in run.data.tags and run.data.metrics:
            return str(run.info.run_id)
    return None


#: How long the sweep command may take to exit after ``scancel``: SIGTERM, the job stops at its next training
#: step, records its run KILLED and writes its result; submitit polls for that file, then the sweep ends.
SCANCEL_BOUND_S = 120


def test_scancel_ends_the_run_killed_the_sweep_fails_and_resume_finishes_it(
    tmp_path: Path, slurm: SlurmCluster, default_store: str
) -> None:
    """``scancel`` of a running job: SLURM sends SIGTERM, the run ends KILLED, the job returns a result, and
    the sweep command exits by itself with status 1 and names the cancelled job; the same sweep again with
    ``sweep.resume=true`` trains that job anew and finishes the sweep.

    This cluster has no accounting database (``sacct`` answers "Slurm accounting storage is disabled"):
    submitit could not learn from SLURM that the job ended, only from the result file the job writes
    (``lossforge.sweeps.jobs``: a cancelled job returns instead of exiting) — what this test shows.
    """
    sweep = (
        "-m",
        "hydra/launcher=submitit_slurm",
        "seed=0",
        *QUICK_RUN,
        "model.hidden=[512,512]",
        "trainer.max_epochs=40",
    )
    command = [sys.executable, "-m", "lossforge", *sweep, "hydra.sweep.dir=sweep"]
    env = child_env(slurm.env)
    log_path = tmp_path / "sweep.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True) as process,
    ):
        try:
            deadline = time.monotonic() + 180
            while (run_id := _running_run(tmp_path)) is None:
                assert process.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "the job did not start training within 180 s"
                time.sleep(0.5)
            (job_id,) = slurm.jobs()
            cancelled = slurm.command("scancel", job_id)
            assert cancelled.returncode == 0, cancelled.stderr
            cancelled_at = time.monotonic()
            try:
                returncode = process.wait(timeout=SCANCEL_BOUND_S)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"the sweep did not exit within {SCANCEL_BOUND_S} s of scancel:\n{log_path.read_text()[-3000:]}"
                )
            exited_after_s = time.monotonic() - cancelled_at
        finally:
            if process.poll() is None:
                process.kill()
    output = log_path.read_text()
    job_log = "".join(
        path.read_text() for path in sorted((tmp_path / "sweep" / ".submitit").glob(f"{job_id}*/*_0_log.*"))
    )
    assert returncode == 1, f"{output[-3000:]}\n{job_log[-3000:]}"
    assert exited_after_s < SCANCEL_BOUND_S
    assert "job 0: SIGTERM" in job_log and "Job completed successfully" in job_log, job_log[-3000:]
    assert re.search(r"^  0 .* KILLED  cancelled \(SIGTERM\)$", output, re.MULTILINE), output[-3000:]
    assert "validated against ConfigStore schema" not in output + job_log, "Hydra's warning is filtered"
    client, _ = default_store_runs(tmp_path)
    killed = client.get_run(run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["lossforge.error"] == "cancelled (SIGTERM)"

    resumed = run_lossforge(tmp_path, *sweep, "hydra.sweep.dir=sweep", "sweep.resume=true", env=slurm.env, timeout=300)
    assert resumed.returncode == 0, f"{resumed.stdout[-3000:]}\n{resumed.stderr[-3000:]}\n{slurm.log_tails()}"
    parent, children = sweep_runs(tmp_path)
    live = [child for child in children if child.info.lifecycle_stage == "active"]
    assert [child.info.status for child in live] == ["FINISHED"] and live[0].info.run_id != run_id
    assert parent.info.status == "FINISHED"


@pytest.mark.postgres
def test_a_two_job_slurm_benchmark_on_a_postgresql_study_spends_exactly_the_budget(
    tmp_path: Path, slurm: SlurmCluster, postgres: PostgresCluster, default_store: str
) -> None:
    """`lossforge benchmark --launcher slurm --workers 2 --storage postgresql://…`: two SLURM jobs share the
    studies on the PostgreSQL server (trials of one study in parallel, reserved under its advisory lock), the
    comparison finishes, and each study has exactly its budget of trials — read back with Optuna."""
    import optuna
    from mlflow import MlflowClient

    postgres.create_database("slurm_tuning")
    storage = postgres.uri("slurm_tuning")
    result = run_lossforge(
        tmp_path, "benchmark", "dataset=regression_outliers", "model.hidden=[8]", "--losses", "l1,huber",
        "--trials", "3", "--seeds", "1", "--epochs", "1", "--name", "on-slurm",
        "--launcher", "slurm", "--workers", "2", "--storage", storage,
        env=slurm.env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}\n{slurm.log_tails()}"
    assert "workers  2 SLURM jobs" in result.stderr
    for entry in ("l1", "huber"):
        study = optuna.load_study(study_name=f"on-slurm/{entry}", storage=storage)
        spent = [trial for trial in study.trials if trial.state.is_finished()]
        assert len(spent) == 3, [(trial.number, trial.state) for trial in study.trials]  # not one more
        ledger = optuna.load_study(study_name=f"on-slurm/{entry} seeds", storage=storage)
        assert [trial.user_attrs["seed"] for trial in ledger.trials] == [0]
    folder = next((tmp_path / "outputs" / "benchmark").glob("on-slurm*/.submitit"))
    logs = [path.read_text() for path in folder.glob("*/*_0_log.err")]
    assert len(logs) == 2 and all("tune     on-slurm/" in log for log in logs), logs  # both jobs tuned
    client = MlflowClient(default_store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    finals = client.search_runs(experiments, "tags.`lossforge.comparison` = 'on-slurm'")
    assert sorted(run.info.status for run in finals) == ["FINISHED"] * 5  # comparison, 2 studies, 2 seed runs
