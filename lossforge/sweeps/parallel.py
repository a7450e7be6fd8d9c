"""`hydra/launcher=parallel`: a sweep's jobs in worker processes on this machine, forked from a warm server.

Hydra's joblib launcher starts each worker as a fresh interpreter that imports torch, Lightning and MLflow
again (about 5 s on a 2-core machine), only once the launcher has set up, and tears them down again at
exit; for a sweep of short jobs those fixed seconds ate the whole gain of running two jobs at once
(`benchmarks/README.md`, section 6). Here:

1. One *fork server* starts on the command's first line when it asks for a parallel sweep
   (`lossforge.commands.app`; when a config file chooses this launcher, as the sweep starts) and imports what a
   job needs (`PRELOAD`) on its own core, while this process composes the config and creates the MLflow
   store and the sweep's parent run.
2. Each worker is a fork of that server (`multiprocessing`'s `forkserver` start method): it starts with
   everything imported, and ends with `os._exit` — no interpreter teardown.
3. Each job runs as under Hydra's other launchers: the sweep config for its overrides, its `hydra.job`
   id and number, `run_job`. A job's failure is its own (`lossforge.sweeps.multirun` records it);
   a worker that *dies* (killed, out of memory) ends the sweep with an error that says so; Ctrl-C ends
   the running jobs (their runs KILLED), and it and `sweep.fail_fast=true` start no queued job.

Threads: the workers are `n_jobs` (≤ 0 counts back from the cores this process may use, as joblib's
`-1` = all of them), never more than the jobs, and each job gets `cores // workers` torch threads —
oversubscribed threads spin-wait on each other.

The fork server imports only; it never runs a torch operation or opens a database connection, so forking
it is safe (no OpenMP pool, no SQLite handle crosses the fork). A worker takes this process's environment
as it is when the jobs are launched, not the server's older copy.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

from lossforge.run_dirs import process_alive

log = logging.getLogger(__name__)

INTERRUPTED = (
    "interrupted (Ctrl-C): the running jobs were stopped and their runs marked KILLED, no other job started; "
    "rerun the same command with sweep.resume=true to finish the sweep"
)
WORKER_DIED = (
    "a worker process of the parallel launcher died (killed by a signal: kill -9, the out-of-memory killer) "
    "and the others were stopped; jobs that finished are recorded in MLflow — rerun the same command with "
    "sweep.resume=true to run the rest"
)

PRELOAD = ("lossforge.sweeps.parallel_preload",)
"""What the fork server imports once, so that no worker has to: the training stack (torch, Lightning,
MLflow, lossforge), matplotlib, and what a job would otherwise import or scan in its first run."""


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a SLURM allocation, `taskset`), else all."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(n_jobs: Any, jobs: int, cores: int) -> int:
    """Worker processes for `jobs` jobs: `n_jobs` if positive, `cores + 1 + n_jobs` if not (joblib's
    convention: -1 = every core, -2 = all but one), at least 1 and at most `jobs`.

    Examples:
        >>> worker_count(-1, jobs=8, cores=2), worker_count(4, jobs=3, cores=16), worker_count(-3, 8, cores=2)
        (2, 3, 1)
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(
            f"hydra.launcher.n_jobs must be a non-zero integer (2 = two workers, -1 = one per core), got {n_jobs!r}"
        )
    wanted = n_jobs if n_jobs > 0 else cores + 1 + n_jobs
    return max(1, min(wanted, jobs))


def threads_per_job(workers: int, cores: int) -> int:
    """Torch threads for each of `workers` jobs at once on `cores` cores: an equal share, at least 1.

    Examples:
        >>> threads_per_job(2, cores=2), threads_per_job(3, cores=16), threads_per_job(4, cores=2)
        (1, 5, 1)
    """
    return max(1, cores // workers)


def start_fork_server() -> None:
    """Start the fork server now, importing `PRELOAD` in the background (idempotent: one per process).
    It is stopped when this process exits ([stop_fork_server][lossforge.sweeps.parallel.stop_fork_server])."""
    global _stop_registered
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    forkserver.ensure_running()
    if not _stop_registered:
        atexit.register(stop_fork_server)
        _stop_registered = True


def stop_fork_server() -> None:
    """Kill the fork server (idle by then: every worker has exited, nothing is lost). Left to stop by itself
    when this process exits, it would first tear down an interpreter holding torch, Lightning and MLflow —
    1.5–3 s here — while keeping this command's output open, so that whoever reads it (a pipe, `tee`, a
    benchmark) waits. multiprocessing offers no public stop: this uses its server's pid and its own
    `_stop`, and does nothing if those are gone in another Python."""
    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        server._stop()  # type: ignore[union-attr]  # reaps it and forgets it: a later start starts anew


_stop_registered = False


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
    """Run the jobs (one list of overrides each) in forked workers; their `JobReturn`s, in order."""
    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals

    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cores = usable_cores()
    workers = worker_count(launcher.n_jobs, len(job_overrides), cores)
    threads = threads_per_job(workers, cores)
    log.info("Launching %d jobs in %d worker processes, %d torch thread(s) each", len(job_overrides), workers, threads)
    log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    for idx, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))

    # Pickled once for all jobs (cloudpickle: Hydra's task function is not importable by name)
    shared = cloudpickle.dumps((launcher.hydra_context, config, launcher.task_function, Singleton.get_state()))
    context = multiprocessing.get_context("forkserver")
    stop = context.Event()  # set when the sweep stops early: a worker then starts no further job
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(dict(os.environ), threads, stop, os.getpid()),
    ) as pool:
        futures = [
            pool.submit(_run_job, initial_job_idx + idx, list(overrides), shared)
            for idx, overrides in enumerate(job_overrides)
        ]
        try:
            returns = [cloudpickle.loads(future.result()) for future in futures]
        except BrokenProcessPool:  # one worker died; the pool has stopped the others
            print(f"lossforge: error: {WORKER_DIED}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None  # at exit the sweep's parent run is marked FAILED
        except BaseException as stopping:  # Ctrl-C here, or a job that ends the sweep (sweep.fail_fast=true)
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)  # the running jobs end; no queued job starts
            if isinstance(stopping, KeyboardInterrupt):  # Ctrl-C reached the running jobs too
                print(f"lossforge: {INTERRUPTED}", file=sys.stderr, flush=True)
                raise SystemExit(128 + signal.SIGINT) from None
            raise
    assert all(isinstance(returned, JobReturn) for returned in returns)
    return returns


def _start_worker(environment: dict[str, str], threads: int, stop: Any, launcher_pid: int) -> None:
    """In a new worker: the launcher's environment of now, its share of the cores, the launcher's stop flag,
    and a watchdog that ends the worker with the launcher."""
    global _stop
    import torch

    os.environ.clear()
    os.environ.update(environment)
    torch.set_num_threads(threads)
    _stop = stop
    threading.Thread(target=_end_with_the_launcher, args=(launcher_pid,), daemon=True).start()


_stop: Any = None  # in a worker: the launcher's stop flag (a multiprocessing Event)
_running = False  # in a worker: whether a job is running


def _end_with_the_launcher(launcher_pid: int, poll_s: float = 0.5, grace_s: float = 60.0) -> None:
    """In a worker: once the launcher is gone — killed or terminated, without the chance to shut its pool
    down — end this worker too, instead of leaving it waiting forever for a next job with torch and Lightning
    in memory (the fork server cannot tell: each worker holds its "alive" pipe open). A running job is first
    sent SIGTERM, so that its run ends KILLED as when SLURM cancels it (`lossforge.sweeps.multirun`), and
    given `grace_s` to record that."""
    while process_alive(launcher_pid):
        time.sleep(poll_s)
    if _running:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _running and time.monotonic() < deadline:
            time.sleep(0.1)
    os._exit(1)


def _run_job(idx: int, overrides: list[str], shared: bytes) -> bytes:
    """In a worker: one job, as Hydra's launchers run it (`hydra_joblib_launcher._core.execute_job` does the
    same); its `JobReturn`, pickled. A return value that cannot be pickled travels as its `repr`."""
    global _running
    import cloudpickle
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job, setup_globals
    from omegaconf import open_dict

    if _stop is not None and _stop.is_set():
        return bytes(cloudpickle.dumps(None))  # the sweep was interrupted: this job does not start
    hydra_context, config, task_function, singleton_state = cloudpickle.loads(shared)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    _running = True
    try:
        returned = run_job(
            hydra_context=hydra_context,
            config=sweep_config,
            task_function=task_function,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    except BaseException:  # not a job's failure (run_job keeps those): it ends the sweep (fail_fast, Ctrl-C)
        if _stop is not None:
            _stop.set()  # now, before this worker takes its next job; the launcher learns it a moment later
        raise
    finally:
        _running = False
    try:
        return bytes(cloudpickle.dumps(returned))
    except Exception as error:  # e.g. an exception holding a lock: keep its text, not the object
        returned._return_value = RuntimeError(f"{returned._return_value!r} (not picklable: {error})")
        return bytes(cloudpickle.dumps(returned))
