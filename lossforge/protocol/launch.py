"""Start a comparison's workers ([work][lossforge.protocol.work.work]) and wait for them.

- `local`, one worker: this process works itself.
- `local`, N workers: this process and N − 1 new ones on this machine (started fresh, `spawn`: nothing of
  this process's threads or open connections carries over), each with an equal share of the cores as its
  torch threads; a new one ends itself when this process is gone (`kill -9` of the command stops them too).
  The new ones start with the command ([LocalWorkers][lossforge.protocol.launch.LocalWorkers]), so that their
  imports (seconds) overlap the command's own preparation instead of following it.
- `slurm`: N SLURM jobs through submitit, sharing the studies through a storage every node reaches (a
  database URL, or a journal file on a shared file system). There a study's trials may run in parallel.

A worker that dies loses at most the trial or seed run it was running: another worker runs it again (one
on the same machine at once, one elsewhere once its heartbeat has stopped). The command waits for all its
workers, then checks from the storage that nothing is left ([WorkLeft][lossforge.protocol.launch.WorkLeft]
otherwise).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from lossforge.protocol.work import Plan, Progress, entry_progress, work

log = logging.getLogger("lossforge.protocol")

LAUNCHERS = ("local", "slurm")


class WorkLeft(RuntimeError):
    """The workers ended with part of the comparison not done (all of them died, or a journal storage, which
    has no heartbeats, holds a trial a dead worker left running)."""


def run_workers(
    plan: Plan,
    *,
    workers: int,
    launcher: str = "local",
    threads: int | None = None,
    slurm: Mapping[str, Any] | None = None,
    quiet: bool = False,
    started: LocalWorkers | None = None,
) -> None:
    """Run `plan` with `workers` workers started by `launcher`; return when they have all ended.

    Args:
        workers: how many (>= 1).
        launcher: `local` (processes on this machine) or `slurm` (SLURM jobs through submitit).
        threads: torch threads per worker; `None`: this machine's usable cores ÷ `workers` (local), or the
            job's `cpus_per_task` (SLURM).
        slurm: submitit's SLURM parameters (`partition`, `timeout_min`, `cpus_per_task`, `mem_gb`, …).
        quiet: workers log warnings only (a progress bar shows the rest).
        started: the local workers, started earlier ([LocalWorkers][lossforge.protocol.launch.LocalWorkers]),
            so that their imports overlap the command's preparation.

    Raises:
        ValueError: an unknown launcher or a worker count below 1.
        WorkLeft: the workers ended and something is not done.
    """
    if workers < 1:
        raise ValueError(f"Expected --workers >= 1, got {workers}")
    if launcher not in LAUNCHERS:
        raise ValueError(f"Unknown launcher {launcher!r}: expected one of {', '.join(LAUNCHERS)}")
    if launcher == "slurm":
        _run_slurm(plan, workers=workers, threads=threads, options=dict(slurm or {}))
    elif workers == 1:
        with _level(logging.WARNING if quiet else None):
            work(plan)
    else:
        with started or LocalWorkers(workers, threads=threads, quiet=quiet) as local:
            local.run(plan, quiet=quiet)
    left = [entry for entry in entry_progress(plan) if not entry.done]
    if left:
        raise WorkLeft(
            f"The workers ended with work left ({'; '.join(entry.line() for entry in left)}): a worker died and "
            f"none could take its work over. Run the same command again to finish the comparison."
        )


class LocalWorkers:
    """The N − 1 new worker processes of a local comparison, started before its plan is known: each imports
    torch, Lightning and MLflow (seconds) while this process composes the configs and prepares the stores,
    then waits for the plan ([run][lossforge.protocol.launch.LocalWorkers.run]); if the command fails (or is
    interrupted) before it has a plan, [close][lossforge.protocol.launch.LocalWorkers.close] ends them at once.

    Use it as a context manager around the preparation and the run.
    """

    def __init__(self, workers: int, *, threads: int | None = None, quiet: bool = False) -> None:
        import multiprocessing

        from lossforge.protocol.work import threads_per_worker, usable_cores

        self.workers = workers
        self.threads = threads or threads_per_worker(workers, usable_cores())
        context = multiprocessing.get_context("spawn")
        self.plans = [context.Pipe(duplex=False) for _ in range(1, workers)]  # (receiving end, sending end)
        self.ready = [context.Event() for _ in range(1, workers)]  # set by each once it has imported
        self.processes = [
            context.Process(
                target=_await_plan,
                args=(receiving, ready),
                kwargs={"threads": self.threads, "quiet": quiet, "parent": os.getpid()},
                name=f"lossforge-benchmark-worker-{number}",
            )
            for number, ((receiving, _), ready) in enumerate(zip(self.plans, self.ready, strict=True), start=1)
        ]
        for process in self.processes:
            process.start()
        self._sent = False

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, plan: Plan, *, quiet: bool) -> None:
        """Hand `plan` to the new workers and work on it in this process too, once they have imported what
        they need (usually already: they did so while this process prepared the plan) so that the first
        pieces spread over all of them; return when all have ended."""
        import torch

        log.info("workers  %d processes on this machine, %d torch thread(s) each", self.workers, self.threads)
        for _, sending in self.plans:
            sending.send(plan)
        self._sent = True
        saved = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for process, ready in zip(self.processes, self.ready, strict=True):
                while not ready.wait(0.5) and process.is_alive():
                    pass
            with _level(logging.WARNING if quiet else None):
                work(plan)
            for process in self.processes:
                process.join()
        except BaseException:  # Ctrl-C: the workers get it too (one process group); wait, then stop them
            for process in self.processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.terminate()
            raise
        finally:
            torch.set_num_threads(saved)
        for number, process in enumerate(self.processes, start=1):
            if process.exitcode:
                log.warning(
                    "workers  worker %d ended with status %s: its running piece, if any, was run again by the others",
                    number,
                    process.exitcode,
                )

    def close(self) -> None:
        """End workers that got no plan (the command failed before it had one) at once — they hold nothing
        yet — and wait for them."""
        for process in self.processes:
            if not self._sent and process.is_alive():
                process.terminate()
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        self._sent = True


def _await_plan(receiving: Any, ready: Any, *, threads: int, quiet: bool, parent: int) -> int:
    """A new local worker: everything imported (this module imports the training stack), it says it is
    `ready` (a multiprocessing event), waits for the plan, then works on it."""
    ready.set()
    try:
        plan = receiving.recv()
    except EOFError:  # the command is gone
        return 0
    return worker_main(plan, threads=threads, quiet=quiet, parent=parent)


def worker_main(plan: Plan, *, threads: int | None, quiet: bool = False, parent: int | None = None) -> int:
    """A worker process (or SLURM job): its torch threads, its log lines, and a watchdog that ends it with
    the command that started it (`parent`); then [work][lossforge.protocol.work.work]."""
    import torch

    from lossforge.training import ignore_known_warnings

    if threads:
        torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("lossforge.protocol").setLevel(logging.WARNING if quiet else logging.INFO)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ignore_known_warnings()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
        return work(plan, alive=lambda: os.getppid() == parent)  # an orphan takes no further piece
    return work(plan)


def _end_with(parent: int, poll_s: float = 0.5) -> None:
    """End this worker when the process that started it is gone (its parent process changes)."""
    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(1)


def _run_slurm(plan: Plan, *, workers: int, threads: int | None, options: dict[str, Any]) -> None:
    """The workers as SLURM jobs; their logs keep a line per finished trial and seed run (no bar in a file)."""
    import submitit

    from lossforge.protocol.work import directory_name

    folder = plan.base_dir / "outputs" / "benchmark" / directory_name(plan.name) / ".submitit"
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
    parameters: dict[str, Any] = {"timeout_min": 60, "cpus_per_task": threads or 1, "tasks_per_node": 1, "nodes": 1}
    parameters.update(options)
    shared = ("timeout_min", "cpus_per_task", "tasks_per_node", "nodes", "mem_gb")  # submitit's own names
    executor.update_parameters(
        name=f"lossforge-benchmark {plan.name}"[:100],
        **{key if key in shared else f"slurm_{key}": value for key, value in parameters.items()},
    )
    cpus = int(parameters["cpus_per_task"])
    with executor.batch():
        jobs = [
            executor.submit(worker_main, plan, threads=threads or cpus, quiet=False, parent=None)  # logs: a line each
            for _ in range(workers)
        ]
    log.info("workers  %d SLURM jobs: %s (logs in %s)", workers, ", ".join(job.job_id for job in jobs), folder)
    for job in jobs:
        try:
            job.result()
        except Exception as error:  # a job that failed or was cancelled: the others took its piece over
            log.warning("workers  SLURM job %s ended with an error: %s", job.job_id, str(error)[-2000:])


class _level:
    """Set the protocol logger's level for a while (`None`: unchanged)."""

    def __init__(self, level: int | None) -> None:
        self.level, self.saved = level, logging.getLogger("lossforge.protocol").level

    def __enter__(self) -> None:
        if self.level is not None:
            logging.getLogger("lossforge.protocol").setLevel(self.level)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("lossforge.protocol").setLevel(self.saved)


def describe(entries: list[Progress]) -> list[str]:
    """What a re-run finds already done, one line per entry that has anything (`focal: 20/20 trials and
    10/10 seeds already finished`)."""
    return [f"{entry.line()} already finished" for entry in entries if entry.trials or entry.seeds]
