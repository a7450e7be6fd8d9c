"""Processes: how many train one experiment, which one this is, and starting ranks 1 … N−1 on this machine.

With one node and no launcher, this process (Hydra's job) is rank 0 and `start_processes` starts the
others as fresh interpreters; under SLURM or torchrun the processes exist already and only read their
place from the environment (`LAUNCH_VARIABLES`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger("lossforge")

LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "RANK", "LOCAL_RANK")
"""The variables through which a launcher tells a process its place (read by Lightning and torch)."""


class DistributedConfigError(ValueError):
    """A trainer configuration that cannot run data-parallel (raised before anything trains)."""


class WorkerFailedError(RuntimeError):
    """A process that lossforge started (rank ≥ 1) failed; its traceback is printed above."""


@dataclass(frozen=True)
class Processes:
    """How many processes train one experiment together, and which one this is."""

    rank: int = 0  # this process's global rank; rank 0 alone records (MLflow, run record, summary)
    world_size: int = 1  # processes over all nodes: devices × num_nodes
    per_node: int = 1  # processes on each node: trainer.devices
    start_here: bool = False  # lossforge starts ranks 1 … per_node − 1 (one node, no external launcher)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def plan_processes(trainer: Mapping[str, Any]) -> Processes:
    """The processes that the `trainer` config (`lightning.Trainer` arguments) asks for.

    One process unless `devices × num_nodes` > 1. If SLURM (`srun`), torchrun or another launcher
    started the processes (`LOCAL_RANK`/`RANK` or SLURM's variables are set), this is one of them and
    its rank comes from there; otherwise lossforge will start the others on this machine.

    Examples:
        >>> plan_processes({"accelerator": "cpu", "devices": 1})
        Processes(rank=0, world_size=1, per_node=1, start_here=False)
    """
    strategy = str(trainer.get("strategy", "auto"))
    per_node = _count_devices(trainer.get("devices", "auto"), str(trainer.get("accelerator", "auto")))
    num_nodes = int(trainer.get("num_nodes", 1) or 1)
    world_size = per_node * num_nodes
    if world_size == 1:
        return Processes()
    if any(word in strategy for word in ("spawn", "fork", "notebook")):
        raise DistributedConfigError(
            f"trainer.strategy={strategy} is not supported with {world_size} processes: Lightning would start "
            f"them inside this process, where the MLflow run cannot follow. Use strategy=ddp (trainer=ddp or "
            f"trainer=ddp_cpu): lossforge then starts the processes itself, and rank 0 records one run."
        )
    if launched_externally():
        return Processes(rank=_rank_from_environment(per_node), world_size=world_size, per_node=per_node)
    if num_nodes > 1:
        raise DistributedConfigError(
            f"trainer.num_nodes={num_nodes} needs a launcher that starts {per_node} process(es) on each node: "
            f"SLURM (python -m lossforge -m hydra/launcher=submitit_slurm ...) or torchrun. lossforge starts "
            f"processes on this machine only. See the README, 'Scaling out'."
        )
    return Processes(rank=0, world_size=world_size, per_node=per_node, start_here=True)


def _count_devices(devices: Any, accelerator: str) -> int:
    """How many processes `Trainer(devices=...)` means on one node (`"auto"`/-1: every GPU, or 1)."""
    if isinstance(devices, list | tuple):
        return len(devices)
    text = str(devices).strip()
    if "," in text:  # "0,1" or "2,": device indices
        return len([part for part in text.split(",") if part.strip()])
    if text in ("auto", "-1"):
        if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
            return torch.cuda.device_count()
        return 1
    return int(text)


def launched_externally() -> bool:
    """True when a launcher (SLURM's `srun`, torchrun, or a user setting `LOCAL_RANK`) started us."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return "LOCAL_RANK" in os.environ or SLURMEnvironment.detect() or TorchElasticEnvironment.detect()


def _rank_from_environment(per_node: int) -> int:
    if "RANK" in os.environ:  # torchrun, or lossforge's own workers
        return int(os.environ["RANK"])
    if "SLURM_PROCID" in os.environ:
        return int(os.environ["SLURM_PROCID"])
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)))
    return node * per_node + int(os.environ.get("LOCAL_RANK", 0))


def check_agrees(processes: Processes, *, global_rank: int, world_size: int) -> None:
    """Fail clearly if Lightning placed this process differently from `processes` (data would overlap),
    or a process group of another size is still open (it would be joined instead of a new one)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() != processes.world_size:
        raise DistributedConfigError(
            f"a process group of {dist.get_world_size()} process(es) is still open in this process, but this run "
            f"needs {processes.world_size}; destroy it (torch.distributed.destroy_process_group()) first."
        )
    if (global_rank, world_size) != (processes.rank, processes.world_size):
        raise DistributedConfigError(
            f"lossforge planned this process as rank {processes.rank} of {processes.world_size}, but Lightning "
            f"made it rank {global_rank} of {world_size}. On SLURM, tasks per node must equal trainer.devices "
            f"and nodes trainer.num_nodes."
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it for a socket bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


Target = Callable[..., Any]
"""A rank-≥1 process runs `target(rank, ready, *args)` and calls `ready()` just before training."""


@contextmanager
def start_processes(
    processes: Processes,
    target: Target,
    args: tuple[Any, ...],
    *,
    startup_timeout: float = 600.0,
    exit_timeout: float = 120.0,
) -> Iterator[None]:
    """Run ranks 1 … N−1 as `target(rank, ready, *args)` in fresh processes; this one becomes rank 0.

    With `processes.start_here`, on entry the others are started (start method `spawn`: a fork would
    copy MLflow's and Hydra's state, and CUDA) and entry returns once each has called `ready()`, so a
    process that dies while starting fails here, naming its rank, instead of leaving rank 0 waiting for
    it. On exit they are joined; on an error in the body they are stopped. Each process gets
    `threads ÷ per_node` torch threads (unless `OMP_NUM_THREADS` is set), and exits by itself if this
    process dies. Processes that a launcher started (SLURM, torchrun) are left as they are.

    Afterwards this process's launch variables, torch threads and process group are as before — also for
    one process with `strategy=ddp`, where Lightning sets `LOCAL_RANK` and opens a one-process group:
    left behind, they would make the next job of a sweep look launched from outside and join that group.
    """
    if processes.world_size > 1 and not processes.start_here:  # a launcher's processes: its environment
        yield
        return
    # Lightning also sets OMP_NUM_THREADS for the processes it thinks it launched.
    saved_environment = {name: os.environ.get(name) for name in (*LAUNCH_VARIABLES, "OMP_NUM_THREADS")}
    saved_threads = torch.get_num_threads()
    try:
        if processes.start_here:
            with _others_started(processes, target, args, startup_timeout, exit_timeout):
                yield
        else:
            yield
    finally:
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(saved_threads)
        if dist.is_available() and dist.is_initialized():  # Lightning leaves it open
            dist.destroy_process_group()


@contextmanager
def _others_started(
    processes: Processes, target: Target, args: tuple[Any, ...], startup_timeout: float, exit_timeout: float
) -> Iterator[None]:
    environment = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": str(processes.world_size),
        "NODE_RANK": "0",
    }
    threads = None if "OMP_NUM_THREADS" in os.environ else max(1, torch.get_num_threads() // processes.per_node)
    context = torch.multiprocessing.get_context("spawn")
    ready = {rank: context.Event() for rank in range(1, processes.world_size)}
    workers = {
        rank: context.Process(
            target=_worker,
            args=(rank, environment, threads, os.getpid(), ready[rank], target, args),
            name=f"lossforge-rank-{rank}",
        )
        for rank in ready
    }
    with _standard_start_method():
        for worker in workers.values():
            worker.start()
    others = "rank 1" if processes.world_size == 2 else f"ranks 1-{processes.world_size - 1}"
    log.info(
        "ddp      %d processes: this one is rank 0, started %s (127.0.0.1:%s)",
        processes.world_size,
        others,
        environment["MASTER_PORT"],
    )
    try:
        _wait_until_ready(workers, ready, startup_timeout)
        os.environ.update(environment, RANK="0", LOCAL_RANK="0")
        if threads is not None:
            torch.set_num_threads(threads)
        yield
        _join(workers, exit_timeout)
    except Exception as error:
        failed = _stop(workers)
        if failed and not isinstance(error, WorkerFailedError):
            raise WorkerFailedError(
                f"{failed}; its traceback is printed above. ({type(error).__name__}: {error})"
            ) from error
        raise
    except BaseException:  # Ctrl-C, SIGTERM: stop the others, keep the interruption as it is
        _stop(workers)
        raise


@contextmanager
def _standard_start_method() -> Iterator[None]:
    """A child inherits the parent's default start method; in a joblib/loky worker (hydra/launcher=joblib)
    that is `"loky"`, which a fresh interpreter cannot set up — so start the children under `"spawn"`."""
    import multiprocessing

    method = multiprocessing.get_start_method(allow_none=True)
    if method in (None, "fork", "spawn", "forkserver"):
        yield
        return
    multiprocessing.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(method, force=True)


def _worker(
    rank: int,
    environment: dict[str, str],
    threads: int | None,
    parent: int,
    ready: Any,
    target: Target,
    args: tuple[Any, ...],
) -> None:
    """The body of a process that `start_processes` started."""
    os.environ.update(environment, RANK=str(rank), LOCAL_RANK=str(rank))
    if threads is not None:
        torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        target(rank, ready.set, *args)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _exit_with_parent(parent: int) -> None:
    """Rank 0 was killed (even `kill -9`): do not wait for it in a collective for the next 30 minutes."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _describe_failure(workers: Mapping[int, Any]) -> str | None:
    failed = [(rank, w.exitcode) for rank, w in workers.items() if w.exitcode not in (None, 0)]
    if not failed:
        return None
    return ", ".join(f"process rank {rank} failed (exit code {code})" for rank, code in failed)


def _wait_until_ready(workers: Mapping[int, Any], ready: Mapping[int, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(event.is_set() for event in ready.values()):
        stopped = [rank for rank, w in workers.items() if w.exitcode is not None and not ready[rank].is_set()]
        if stopped:
            raise WorkerFailedError(
                f"{_describe_failure(workers) or f'process rank {stopped[0]} exited'} before training started; "
                f"its traceback is printed above"
            )
        if time.monotonic() > deadline:
            raise WorkerFailedError(f"the other processes were not ready to train after {timeout:.0f} s")
        time.sleep(0.05)


def _join(workers: Mapping[int, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for worker in workers.values():
        worker.join(max(0.0, deadline - time.monotonic()))
    hanging = [rank for rank, w in workers.items() if w.is_alive()]
    if hanging:
        raise WorkerFailedError(f"process rank(s) {hanging} did not finish {timeout:.0f} s after rank 0")
    failure = _describe_failure(workers)
    if failure:
        raise WorkerFailedError(f"{failure} after training; its traceback is printed above")


def _stop(workers: Mapping[int, Any], grace: float = 5.0) -> str | None:
    """Stop the others (SIGTERM, then SIGKILL); say which had already failed — the likely cause."""
    failure = _describe_failure(workers)
    for worker in workers.values():
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + grace
    for worker in workers.values():
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()
    return failure
