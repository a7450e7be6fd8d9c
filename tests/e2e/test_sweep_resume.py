"""Sweeps that survive a failing job and resume, end to end: the real command in a subprocess, a plugin that
fails to load (installed on ``PYTHONPATH``) and is then fixed, with the basic and the parallel launcher."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import GOOD_LOSS, QUICK_RUN, run_lossforge, run_python, sweep_runs

from lossforge.sweeps.jobs import CONFIG_HASH_TAG, ERROR_TAG

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]

SWEEP = ("loss=l1,flaky_l1,l2", "dataset=regression_outliers", *QUICK_RUN)
BROKEN = 'raise RuntimeError("flaky plugin: its data server is down")\n'


def install_flaky_plugin(root: Path, module: str) -> dict[str, str]:
    """A distribution ``lf-flaky`` whose loss ``flaky_l1`` lives in ``module`` (the broken or the fixed
    text); returns the environment that puts it on the child's path."""
    package = root / "site" / "lf_flaky"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "losses.py").write_text(module)
    dist_info = root / "site" / "lf_flaky-0.1.0.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lf-flaky\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[lossforge.losses]\nflaky_l1 = lf_flaky.losses:ScaledL1\n")
    return {"PYTHONPATH": str(root / "site"), "XDG_CACHE_HOME": str(root / "cache")}


@pytest.mark.parametrize("launcher", [(), ("hydra/launcher=parallel",)], ids=["basic", "parallel"])
def test_a_failing_job_is_recorded_the_sweep_goes_on_and_resume_reruns_only_it(
    tmp_path: Path, launcher: tuple[str, ...]
) -> None:
    env = install_flaky_plugin(tmp_path, BROKEN)
    result = run_lossforge(tmp_path, "-m", *launcher, *SWEEP, env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Failed jobs (1):" in result.stdout and "sweep.resume=true" in result.stdout
    assert "its data server is down" in result.stdout
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FAILED"
    status = {child.data.tags["loss"]: child.info.status for child in children}
    assert status == {"l1": "FINISHED", "flaky_l1": "FAILED", "l2": "FINISHED"}
    (failed,) = [child for child in children if child.info.status == "FAILED"]
    assert "RegistryError" in failed.data.tags[ERROR_TAG] and "its data server is down" in failed.data.tags[ERROR_TAG]
    assert failed.data.tags["hydra.job_num"] == "1" and CONFIG_HASH_TAG in failed.data.tags
    finished_ids = {child.info.run_id for child in children if child.info.status == "FINISHED"}

    install_flaky_plugin(tmp_path, GOOD_LOSS)  # the plugin is fixed
    resumed = run_lossforge(tmp_path, "-m", *launcher, *SWEEP, "sweep.resume=true", env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert resumed.stdout.count("skipped (sweep.resume)") == 2
    parent_again, children = sweep_runs(tmp_path)  # still one parent
    assert parent_again.info.run_id == parent.info.run_id and parent_again.info.status == "FINISHED"
    assert {child.info.status for child in children} == {"FINISHED"} and len(children) == 3
    assert finished_ids < {child.info.run_id for child in children}  # the finished runs were kept, not redone


def test_a_worker_that_dies_ends_the_parallel_sweep_clearly_and_resume_completes_it(tmp_path: Path) -> None:
    # A job whose process is killed (the OOM killer, kill -9) cannot record anything: the launcher says what
    # happened and how to go on, the parent run is not left RUNNING, and resume reruns what did not finish.
    marker = tmp_path / "kill-the-worker"
    marker.touch()
    killer = GOOD_LOSS.replace("import torch\n", "import os\nimport signal\n\nimport torch\n", 1).replace(
        "        return self.scale",
        f"        if os.path.exists({str(marker)!r}):\n            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return self.scale",
    )
    env = install_flaky_plugin(tmp_path, killer)
    sweep = ("-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *SWEEP)
    result = run_lossforge(tmp_path, *sweep, env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "a worker process of the parallel launcher died" in result.stderr
    assert "sweep.resume=true" in result.stderr
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FAILED"  # not RUNNING
    assert "FINISHED" not in {child.data.tags["loss"]: child.info.status for child in children}.get("flaky_l1", "")

    marker.unlink()  # whatever killed it is gone
    resumed = run_lossforge(tmp_path, *sweep, "sweep.resume=true", env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    parent_again, children = sweep_runs(tmp_path)
    assert parent_again.info.run_id == parent.info.run_id and parent_again.info.status == "FINISHED"
    assert sorted(child.data.tags["loss"] for child in children) == ["flaky_l1", "l1", "l2"]
    assert {child.info.status for child in children} == {"FINISHED"}


def test_fail_fast_stops_at_the_first_failing_job(tmp_path: Path) -> None:
    env = install_flaky_plugin(tmp_path, BROKEN)
    result = run_lossforge(tmp_path, "-m", "loss=flaky_l1,l1", *SWEEP[1:], "sweep.fail_fast=true", env=env)
    assert result.returncode == 1
    assert "Sweep stopped at job 0 (sweep.fail_fast=true)." in result.stdout
    parent, children = sweep_runs(tmp_path)
    assert parent.info.status == "FAILED" and [child.info.status for child in children] == ["FAILED"]


def test_fail_fast_under_the_parallel_launcher_lets_the_running_job_finish_and_starts_no_other(
    tmp_path: Path,
) -> None:
    env = install_flaky_plugin(tmp_path, BROKEN)
    losses = "loss=flaky_l1,l1,l2,huber,l1,l2"  # job 0 fails; job 1 may be running beside it
    sweep = ("-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", losses, "seed=0", *SWEEP[1:])
    result = run_lossforge(tmp_path, *sweep, "sweep.fail_fast=true", env=env)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Sweep stopped at job 0 (sweep.fail_fast=true)." in result.stdout
    parent, children = sweep_runs(tmp_path)
    status = sorted((child.data.tags["hydra.job_num"], child.info.status) for child in children)
    assert parent.info.status == "FAILED"
    assert status in ([("0", "FAILED")], [("0", "FAILED"), ("1", "FINISHED")]), status  # jobs 2–5 never started


def test_the_config_hash_is_the_same_in_another_process() -> None:
    code = (
        "from helpers import compose_config; from lossforge.tracking.config_hash import config_hash; "
        "print(config_hash(compose_config('loss=focal', 'loss.gamma=0.5', 'seed=3')))"
    )
    tests = Path(__file__).resolve().parents[1]
    hashes = {
        run_python(tests, "-c", code, env={"PYTHONHASHSEED": seed}).stdout.strip().splitlines()[-1]
        for seed in ("1", "2")
    }
    from helpers import compose_config

    from lossforge.tracking.config_hash import config_hash

    assert hashes == {config_hash(compose_config("loss=focal", "loss.gamma=0.5", "seed=3"))}
