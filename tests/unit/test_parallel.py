"""The parallel launcher's parts (``lossforge.sweeps.parallel``): how many workers and threads, the fork server's
life, and what it preloads. Whole sweeps through it run in ``tests/e2e/test_sweeps.py`` and
``tests/e2e/test_sweep_resume.py``."""

from __future__ import annotations

import importlib.util
import os
import time
from multiprocessing import forkserver

import pytest

from lossforge.commands.app import _parallel_sweep
from lossforge.sweeps.parallel import PRELOAD, start_fork_server, stop_fork_server, threads_per_job, worker_count
from lossforge.sweeps.parallel_preload import _MODULES


@pytest.mark.parametrize(
    ("n_jobs", "jobs", "cores", "expected"),
    [
        (2, 8, 2, 2),  # as asked
        (4, 3, 16, 3),  # never more workers than jobs
        (-1, 8, 2, 2),  # one per core
        (-1, 8, 16, 8),
        (-2, 8, 16, 8),  # all but one core, capped by the jobs
        (-2, 20, 16, 15),
        (-3, 8, 2, 1),  # at least one
        (1, 8, 2, 1),
    ],
)
def test_worker_count_follows_joblibs_convention(n_jobs: int, jobs: int, cores: int, expected: int) -> None:
    assert worker_count(n_jobs, jobs, cores) == expected


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True, None])
def test_a_bad_n_jobs_names_the_setting(n_jobs: object) -> None:
    with pytest.raises(ValueError, match=r"hydra\.launcher\.n_jobs must be a non-zero integer .* got"):
        worker_count(n_jobs, jobs=4, cores=2)


@pytest.mark.parametrize(("workers", "cores", "expected"), [(2, 2, 1), (1, 2, 2), (3, 16, 5), (4, 2, 1)])
def test_each_job_gets_an_equal_share_of_the_cores(workers: int, cores: int, expected: int) -> None:
    assert threads_per_job(workers, cores) == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["-m", "hydra/launcher=parallel", "seed=0,1"], True),
        (["--multirun", "seed=0,1", "hydra/launcher=parallel"], True),
        (["-m", "+hydra/launcher=parallel", "seed=0,1"], True),
        (["hydra/launcher=parallel"], False),  # one run: no workers
        (["-m", "seed=0,1"], False),  # the basic launcher
        (["-m", "hydra/launcher=joblib"], False),
        (["-m", "hydra/launcher=parallel", "--cfg", "job"], False),  # prints the config, runs nothing
        (["-m", "hydra/launcher=parallel", "--help"], False),
    ],
)
def test_the_fork_server_starts_early_only_for_a_parallel_sweep(arguments: list[str], expected: bool) -> None:
    assert _parallel_sweep(arguments) is expected


def test_what_the_fork_server_preloads_exists() -> None:
    assert PRELOAD == ("lossforge.sweeps.parallel_preload",)
    missing = [module for module in _MODULES if importlib.util.find_spec(module) is None]
    assert not missing, f"lossforge.sweeps.parallel_preload names modules that do not exist: {missing}"


def test_the_fork_server_is_stopped_at_once_and_can_start_again() -> None:
    start_fork_server()
    server = forkserver._forkserver  # type: ignore[attr-defined]
    pid = server._forkserver_pid
    assert pid is not None
    os.kill(pid, 0)  # running
    start_fork_server()  # idempotent: the same server
    assert server._forkserver_pid == pid

    began = time.perf_counter()
    stop_fork_server()  # killed, not left to tear down torch and Lightning
    assert time.perf_counter() - began < 5, "stopping the fork server waited for it"
    assert server._forkserver_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
    stop_fork_server()  # a second stop is a no-op

    start_fork_server()
    assert server._forkserver_pid not in (None, pid)
    stop_fork_server()


def test_a_launcher_that_died_is_not_alive_even_before_it_is_reaped() -> None:
    import subprocess
    import sys

    from lossforge.run_dirs import process_alive as _alive

    assert _alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while _alive(child.pid) and time.monotonic() < deadline:  # exited, not yet reaped: a zombie
        time.sleep(0.05)
    assert not _alive(child.pid)
    child.wait()
    assert not _alive(child.pid)  # reaped: gone
