"""``lossforge.run_dirs``: each command's directory has a launch id fixed once in the launching process and carried
to its jobs in the config; ``resume=<run id>`` refuses a directory another run wrote over. (Commands started in
the same second, end to end: ``tests/e2e/test_concurrency.py``.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cloudpickle
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from lossforge.hydra_options import register_components
from lossforge.run_dirs import RUN_RECORD, DirectoryOfAnotherRun, register_launch_id
from lossforge.training.resume import RUN_RECORD as RESUME_RUN_RECORD
from lossforge.training.resume import resolve_resume


def hydra_config() -> DictConfig:
    register_components(with_parameters=True)
    register_launch_id()
    GlobalHydra.instance().clear()
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        return compose("config", return_hydra_config=True)


def test_directories_are_date_time_and_a_launch_id_drawn_once_per_command() -> None:
    first, second = hydra_config(), hydra_config()  # two commands, composed in the same second
    pattern = r"outputs/(runs|multirun)/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d-[0-9a-f]{6}"
    for config in (first, second):
        assert re.fullmatch(pattern, str(config.hydra.run.dir)) and re.fullmatch(pattern, str(config.hydra.sweep.dir))
        assert str(config.hydra.run.dir)[-6:] == str(config.hydra.sweep.dir)[-6:]  # read twice: one id
    assert str(first.hydra.sweep.dir)[-6:] != str(second.hydra.sweep.dir)[-6:]


def test_a_jobs_config_resolves_the_launchers_directory() -> None:
    launcher = hydra_config()
    sweep_dir = str(launcher.hydra.sweep.dir)  # resolved in the launching process first, as Hydra does
    job = hydra_config()  # a job's config is composed again: Hydra copies the launcher's resolver cache into it
    OmegaConf.copy_cache(from_config=launcher, to_config=job)
    assert str(job.hydra.sweep.dir) == sweep_dir
    shipped = cloudpickle.loads(cloudpickle.dumps(launcher))  # the parallel and submitit launchers pickle it
    assert str(shipped.hydra.sweep.dir) == sweep_dir


def test_the_run_record_is_the_one_resume_writes() -> None:
    assert RUN_RECORD == RESUME_RUN_RECORD


@pytest.fixture
def run_over_written(tmp_path: Path, default_store: str) -> tuple[str, str, Path]:
    """Run A's directory, written over by run B (two commands that once shared a directory): A's MLflow run
    points at the directory, whose record now names B. Returns (A, B, directory)."""
    client = MlflowClient(default_store)
    experiment = client.create_experiment("lossforge")
    directory = tmp_path / "outputs" / "runs" / "2025-01-01" / "12-00-00"
    first, second = (
        client.create_run(experiment, tags={"lossforge.output_dir": str(directory)}).info.run_id for _ in range(2)
    )
    (directory / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 0, "global_step": 3}, directory / "checkpoints" / "last.ckpt")  # B's, at an epoch's end
    (directory / RUN_RECORD).write_text(json.dumps({"run_id": second, "tracking_uri": default_store}))
    (directory / "lossforge_config.yaml").write_text("seed: 0\n")
    return first, second, directory


def test_resume_by_run_id_refuses_a_directory_whose_record_names_another_run(
    run_over_written: tuple[str, str, Path], tmp_path: Path, default_store: str
) -> None:
    first, second, directory = run_over_written
    with pytest.raises(DirectoryOfAnotherRun) as refused:
        resolve_resume(first, base_dir=tmp_path, tracking_uri=default_store)
    message = str(refused.value)
    assert f"resume={first}: its directory {directory} belongs to run {second}" in message
    assert "Nothing was resumed" in message and f"resume={directory}" in message
    assert isinstance(refused.value, ValueError)  # the command line prints it as one paragraph
    resumed = resolve_resume(second, base_dir=tmp_path, tracking_uri=default_store)  # the directory's own run
    assert resumed.run_id == second and resumed.output_dir == directory
