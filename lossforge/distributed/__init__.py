"""Data-parallel training (DDP): who starts the processes, what each one sees, and what only rank 0 records.

``trainer=ddp`` (every GPU of a machine) and ``trainer=ddp_cpu`` (2 CPU processes, gloo) train ONE
experiment in ``devices × num_nodes`` processes. ``batch_size`` is **per process**: a training step's
global batch has ``batch_size × devices × num_nodes`` samples, as in Lightning.

**Who starts the processes.** Lightning's ``strategy="ddp"`` starts the extra processes by running the
command line again; under Hydra that re-enters Hydra, so a multirun (``-m`` is on that command line) is
relaunched from every extra process, with output directories and MLflow runs of its own. ``ddp_spawn``
avoids that but pickles the trainer and its callbacks (an open MLflow client does not pickle), spawns again
for ``test``, and what the workers compute (the test predictions behind the plots) stays in them. lossforge
instead keeps the Hydra job as rank 0 and starts ranks 1 … N−1 itself (``start_processes``): fresh
interpreters (start method ``spawn``) that build the same experiment from the resolved config and train it
without tracking. It exports ``MASTER_ADDR``/``MASTER_PORT``/``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, so
Lightning treats the processes as launched externally — as under torchrun or SLURM — and only joins them.
Result: one Hydra job, one output directory, one MLflow run created by rank 0. On SLURM (``srun`` starts
``devices`` tasks per node) or under torchrun the processes exist already; lossforge starts none, and every
rank but 0 trains without recording anything.

**What each process sees.** Training: each process takes its share of every global batch of the epoch's
shuffled order (``GlobalBatchShard``), so the shares are disjoint, reshuffled every epoch, and together
exactly the batch a single process with ``batch_size × world size`` would draw. Validation and test are
not sharded: every process evaluates the whole split (forward only, cheap next to training) and gets the
same metrics — no samples padded in twice, retrieval searches the whole gallery, and nothing needs
summing across processes.

**The loss sees the global batch.** ``global_batch`` all-gathers the outputs (gradients flow back to this
process's own slice only) and the targets, so every process computes the loss of the whole global batch —
a miner finds hard negatives held by other processes, and a loss whose value depends on the batch
(weighted means, ``mean_nonzero``, ``sum``) is the single-process loss whatever its reduction. Every
process then backpropagates that loss into its own samples only; the sum over processes of these partial
gradients is the full gradient, but DDP *averages* gradients over processes, so the loss is multiplied by
the world size before ``backward``. The outputs gathered are ``(batch, outputs)`` — small next to the
parameters DDP all-reduces every step anyway.

**Randomness.** Every process is seeded alike, so all start from the same weights and a miner that samples
(``all_triplets`` over its cap) draws the same sample on each — as it must, since each computes the same
loss. Dropout masks are therefore drawn alike on every process too (with dropout, DDP is not bit-for-bit
one process). **SIGTERM** stops all processes at the same step (``StopTogetherOnSigterm``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

log = logging.getLogger("lossforge")

#: The variables through which a launcher tells a process its place (read by Lightning and torch).
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "RANK", "LOCAL_RANK")


class DistributedConfigError(ValueError):
    """A trainer configuration that cannot run data-parallel (raised before anything trains)."""


class WorkerFailedError(RuntimeError):
    """A process that lossforge started (rank ≥ 1) failed; its traceback is printed above."""


# -- the global batch --------------------------------------------------------------------------------


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_gather(tensor: Tensor) -> list[Tensor]:
    """Every process's ``tensor`` (no gradient), in rank order; dim 0 may differ between processes."""
    if tensor.dtype == torch.bool:  # not every backend gathers bools
        return [part.bool() for part in _all_gather(tensor.to(torch.uint8))]
    world_size = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.empty_like(size) for _ in range(world_size)]
    dist.all_gather(sizes, size)
    lengths = [int(length) for length in sizes]
    padded = tensor.new_zeros((max(lengths), *tensor.shape[1:]))  # all_gather needs equal shapes
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(parts, padded)
    return [part[:length] for part, length in zip(parts, lengths, strict=True)]


def gather(tensor: Tensor) -> Tensor:
    """Every process's ``tensor`` concatenated along dim 0 in rank order, without gradient.

    Not distributed: ``tensor`` itself.

    Example:
        >>> labels = torch.tensor([0, 1, 1])
        >>> gather(labels) is labels
        True
    """
    if not is_distributed():
        return tensor
    return torch.cat(_all_gather(tensor.detach()))


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Every process's ``tensor`` concatenated along dim 0 in rank order; gradients reach the local slice.

    The other processes' slices are constants here: a loss :math:`L` of the result backpropagates
    :math:`\\partial L / \\partial x_r` into this process's own rows :math:`x_r` only. Each process owns
    different rows, so the sum over processes of these partial gradients is the gradient of :math:`L`
    with respect to the whole global batch (see the module docstring for DDP's averaging).

    Args:
        tensor: this process's part of the batch; dim 0 may differ between processes.

    Shape:
        - tensor: :math:`(B_r, *)`
        - Output: :math:`(\\sum_r B_r, *)`, rows of rank 0 first

    Example:
        >>> embeddings = torch.ones(2, 3, requires_grad=True)
        >>> gather_with_grad(embeddings) is embeddings  # not distributed: the identity
        True
    """
    if not is_distributed():
        return tensor
    parts = _all_gather(tensor.detach())
    parts[dist.get_rank()] = tensor  # the one slice that carries this process's graph
    return torch.cat(parts)


def global_batch(outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, int]:
    """The batch a training loss sees: every process's outputs and targets, and the gradient scale.

    Returns ``(outputs, targets, scale)``: outputs gathered with ``gather_with_grad``, targets with
    ``gather``, and ``scale`` = the world size — multiply the loss by it before ``backward`` so that DDP's
    average of the per-process gradients equals the single-process gradient of the global batch. Not
    distributed: ``(outputs, targets, 1)``.

    Shape:
        - outputs: :math:`(B_r, *)`, targets: :math:`(B_r, *)`
        - Output: :math:`(B, *)`, :math:`(B, *)` with :math:`B = \\sum_r B_r`, and an int

    Example:
        >>> outputs, targets = torch.zeros(4, 10), torch.arange(4)
        >>> global_batch(outputs, targets)[2]
        1
    """
    if not is_distributed():
        return outputs, targets, 1
    return gather_with_grad(outputs), gather(targets), dist.get_world_size()


# -- training data: each process's share of every global batch ----------------------------------------


class GlobalBatchShard(Sampler[int]):
    """This process's share of every global batch of ``sampler``'s order.

    One epoch of ``sampler`` is cut into global batches of ``batch_size × num_replicas`` indices; process
    ``rank`` takes positions ``rank, rank + num_replicas, …`` of each, so every process has ``batch_size``
    samples per step (the last step: within one of each other) and the shares of a step together are that
    global batch. Unlike ``DistributedSampler`` nothing is padded in twice; a last global batch with fewer
    samples than processes is dropped (a process without samples would miss the step and stall the
    others). ``set_epoch`` is passed on to ``sampler`` — Lightning's ``DistributedSamplerWrapper`` keeps
    it, and a wrapped ``EpochShuffle`` would then repeat epoch 0's order forever.

    Args:
        sampler: the single-process order (e.g. ``EpochShuffle``); iterated once per epoch.
        batch_size: samples per process per step.
        rank: this process's global rank.
        num_replicas: the number of processes.

    Example:
        >>> shares = [list(GlobalBatchShard(range(11), batch_size=2, rank=r, num_replicas=2)) for r in (0, 1)]
        >>> shares  # global batches [0..3], [4..7], [8, 9, 10]
        [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]
    """

    def __init__(self, sampler: Sampler[int] | range, *, batch_size: int, rank: int, num_replicas: int) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Expected 0 <= `rank` < `num_replicas`, got rank {rank} of {num_replicas}")
        if batch_size < 1:
            raise ValueError(f"Expected `batch_size` >= 1, got {batch_size}")
        self.sampler, self.batch_size, self.rank, self.num_replicas = sampler, batch_size, rank, num_replicas

    def set_epoch(self, epoch: int) -> None:
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def _kept(self, total: int) -> int:
        """How many of ``total`` indices are used: all but a last global batch smaller than the world."""
        remainder = total % (self.batch_size * self.num_replicas)
        return total - remainder if remainder < self.num_replicas else total

    def __iter__(self) -> Iterator[int]:
        order = list(self.sampler)
        order = order[: self._kept(len(order))]
        step = self.batch_size * self.num_replicas
        for start in range(0, len(order), step):
            yield from order[start : start + step][self.rank :: self.num_replicas]

    def __len__(self) -> int:
        assert isinstance(self.sampler, Sized)
        kept = self._kept(len(self.sampler))
        return len(range(self.rank, kept, self.num_replicas))


def shard_loader(loader: DataLoader, *, rank: int, num_replicas: int) -> DataLoader:
    """``loader`` with its sampler replaced by this process's ``GlobalBatchShard`` of it."""
    assert loader.batch_size is not None, "shard_loader needs a loader with a batch_size"
    sampler = GlobalBatchShard(loader.sampler, batch_size=loader.batch_size, rank=rank, num_replicas=num_replicas)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
    )


# -- stopping together --------------------------------------------------------------------------------


class StopTogetherOnSigterm(L.Callback):
    """DDP: a SIGTERM stops every process at the same training step, or after the test pass.

    The handler only notes the signal. At the start of each training step rank 0's note is broadcast
    and, if set, given to Lightning on every process, so all of them raise ``SIGTERMException`` at the
    next step together, save ``interrupted.ckpt`` together, and rank 0 marks the run KILLED. A SIGTERM
    during the test pass (or after the last training step) ends the run after it: ``fit_and_test`` then
    raises ``SIGTERMException`` on its own.

    Why: Lightning 2.6's SIGTERM handler broadcasts from *inside* the handler — a collective at whatever
    point the signal interrupted rank 0, which the others are not making then — and rank 0 also checks
    its flag alone at epoch end and during validation. Measured here, ``kill <rank 0>`` of a
    ``trainer=ddp_cpu`` run left both processes waiting for each other forever (Lightning-AI/
    pytorch-lightning#20806: SIGTERM not handled consistently across ranks). Lightning restores its own
    handler after ``fit``/``test``; with one process this callback does nothing.
    """

    def __init__(self) -> None:
        self.received = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._replace_handler(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._replace_handler(trainer)

    def _replace_handler(self, trainer: L.Trainer) -> None:
        if trainer.world_size < 2:
            return

        def note(signum: int, frame: FrameType | None) -> None:
            log.info("ddp      SIGTERM on rank %d: the processes stop together", trainer.global_rank)
            self.received = True

        signal.signal(signal.SIGTERM, note)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, index: int) -> None:
        if trainer.world_size < 2:
            return
        flag = torch.tensor([int(self.received)], device=pl_module.device)
        dist.broadcast(flag, src=0)  # every process is here, at the same step
        if flag.item():
            trainer._signal_connector.received_sigterm = True  # Lightning stops all at the next step


# -- processes: how many, which one is this, and starting them ------------------------------------------


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
    """The processes that the ``trainer`` config (``lightning.Trainer`` arguments) asks for.

    One process unless ``devices × num_nodes`` > 1. If SLURM (``srun``), torchrun or another launcher
    started the processes (``LOCAL_RANK``/``RANK`` or SLURM's variables are set), this is one of them and
    its rank comes from there; otherwise lossforge will start the others on this machine.

    Example:
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
    """How many processes ``Trainer(devices=...)`` means on one node (``"auto"``/-1: every GPU, or 1)."""
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
    """True when a launcher (SLURM's ``srun``, torchrun, or a user setting ``LOCAL_RANK``) started us."""
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
    """Fail clearly if Lightning placed this process differently from ``processes`` (data would overlap),
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


#: A rank-≥1 process runs ``target(rank, ready, *args)`` and calls ``ready()`` just before training.
Target = Callable[..., Any]


@contextmanager
def start_processes(
    processes: Processes,
    target: Target,
    args: tuple[Any, ...],
    *,
    startup_timeout: float = 600.0,
    exit_timeout: float = 120.0,
) -> Iterator[None]:
    """Run ranks 1 … N−1 as ``target(rank, ready, *args)`` in fresh processes; this one becomes rank 0.

    With ``processes.start_here``, on entry the others are started (start method ``spawn``: a fork would
    copy MLflow's and Hydra's state, and CUDA) and entry returns once each has called ``ready()``, so a
    process that dies while starting fails here, naming its rank, instead of leaving rank 0 waiting for
    it. On exit they are joined; on an error in the body they are stopped. Each process gets
    ``threads ÷ per_node`` torch threads (unless ``OMP_NUM_THREADS`` is set), and exits by itself if this
    process dies. Processes that a launcher started (SLURM, torchrun) are left as they are.

    Afterwards this process's launch variables, torch threads and process group are as before — also for
    one process with ``strategy=ddp``, where Lightning sets ``LOCAL_RANK`` and opens a one-process group:
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
    """A child inherits the parent's default start method; in a joblib/loky worker (hydra/launcher=parallel)
    that is ``"loky"``, which a fresh interpreter cannot set up — so start the children under ``"spawn"``."""
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
    """The body of a process that ``start_processes`` started."""
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
    """Rank 0 was killed (even ``kill -9``): do not wait for it in a collective for the next 30 minutes."""
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
