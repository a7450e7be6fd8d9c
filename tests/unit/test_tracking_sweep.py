"""A multirun's parent run and each job's place in it (``lossforge.tracking.sweep``), against a SQLite store and
a Hydra config built by hand — no Hydra run, no subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.types import RunMode
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lossforge.tracking import SWEEP_RECORD, MlflowSweepCallback, SweepJob, mlflow_run, run_context_tags, sweep_job

SWEEP_DIR = "outputs/multirun/2025-01-01/12-00-00"  # relative, as conf/config.yaml sets it


def hydra_config(started_in: Path, *, mode: RunMode | None = RunMode.MULTIRUN, job_num: int = 0) -> DictConfig:
    """The parts of ``HydraConfig.get()`` that a sweep reads."""
    return OmegaConf.create(
        {
            "mode": mode,
            "sweep": {"dir": SWEEP_DIR},
            "job": {"num": job_num},
            "overrides": {"task": ["loss=huber", "seed=1"]},
            "runtime": {"cwd": str(started_in)},
        }
    )


def multirun_config(started_in: Path) -> DictConfig:
    """What ``on_multirun_start`` receives: the config with its ``hydra`` node."""
    store = f"sqlite:///{started_in / 'mlflow.db'}"
    logger = {"tracking_uri": store, "artifact_location": (started_in / "artifacts").as_uri(), "experiment": "sweeps"}
    config = OmegaConf.create({"logger": logger, "hydra": hydra_config(started_in)})
    config.hydra.overrides.task = ["loss=l1,huber", "seed=1"]
    return config


@pytest.mark.parametrize("mode", [RunMode.RUN, None])
def test_outside_a_multirun_there_is_no_sweep_job(tmp_path: Path, mode: RunMode | None) -> None:
    assert sweep_job(hydra_config(tmp_path, mode=mode)) is None


def test_without_the_callback_a_job_has_no_parent_run(tmp_path: Path) -> None:
    assert sweep_job(hydra_config(tmp_path, job_num=2)) == SweepJob(
        sweep_dir=SWEEP_DIR, job_num=2, overrides=("loss=huber", "seed=1"), parent_run_id=None
    )


def test_the_jobs_find_the_parent_run_in_the_sweep_directory_and_end_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = multirun_config(tmp_path)
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    record = json.loads((tmp_path / SWEEP_DIR / SWEEP_RECORD).read_text())  # the directory did not exist yet
    assert record == {"parent_run_id": callback.parent_run_id, "tracking_uri": config.logger.tracking_uri}

    elsewhere = tmp_path / "job"  # a job that runs in its own directory (hydra.job.chdir=true, a SLURM node)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    job = sweep_job(hydra_config(tmp_path, job_num=1))
    assert job is not None and (job.parent_run_id, job.job_num) == (callback.parent_run_id, 1)
    with mlflow_run(
        tracking_uri=config.logger.tracking_uri,
        experiment="sweeps",
        run_name="child",
        tags=run_context_tags(job),
        artifact_location=config.logger.artifact_location,
    ):
        pass

    callback.on_multirun_end(config)
    parent = MlflowClient(config.logger.tracking_uri).get_run(callback.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["lossforge.children"] == "1"
    assert parent.data.params["overrides"] == "loss=l1,huber seed=1"
