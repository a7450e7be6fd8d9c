"""Sweeps and DDP on a real single-node SLURM cluster (``servers.slurm_cluster``: munged, slurmctld, slurmd on
this machine): submitit queues the jobs with ``sbatch``, ``srun`` starts their tasks, and what they record is
read back from the MLflow store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import QUICK_RUN, run_lossforge, sweep_runs
from servers import SlurmCluster

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
