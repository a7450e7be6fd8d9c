"""Each job of a multirun under its sweep's parent MLflow run: how a failing or cancelled job is recorded
and the sweep goes on, and how `sweep.resume=true` skips what finished and supersedes what did not
([run_sweep_job][lossforge.sweeps.jobs.run_sweep_job]). The sweep's life as a whole is
`lossforge.sweeps.multirun`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from lossforge.tracking.config_hash import EXCLUDED, config_hash
from lossforge.tracking.runs import OUTCOME_TAG, Outcome, params_for_mlflow, run_context_tags
from lossforge.tracking.secrets import (
    recordable_overrides,
    run_name_for,
    scrub_secrets,
)
from lossforge.tracking.sweep_record import SweepJob

log = logging.getLogger("lossforge")

CONFIG_HASH_TAG = "lossforge.config_hash"
"""Tags: a child's config hash, a parent's sweep hash, the error of a failed run, a superseded earlier attempt."""


SWEEP_HASH_TAG = "lossforge.sweep_hash"


ERROR_TAG = "lossforge.error"


SUPERSEDED_TAG = "lossforge.superseded_by_resume"


ERROR_LENGTH = 5000  # characters of an error kept in its tag


CANCELLED = "cancelled (SIGTERM)"  # the error of a job stopped by SIGTERM (scancel)


UNREACHABLE = (MlflowException, OSError)
"""Errors of a tracking server that does not answer: MLflow's (an HTTP store wraps requests' errors in them)
and the connection errors themselves (`requests`' derive from `OSError`)."""


_launcher_pid: int | None = None
"""The id of the process that launched the sweep (`on_multirun_start` ran in it); a job in another process
(SLURM, the parallel launcher) returns when cancelled, one in this process lets the SIGTERM end the sweep."""


def mark_launcher() -> None:
    """Note this process as the one that launched the sweep (the sweep callback's `on_multirun_start`)."""
    global _launcher_pid
    _launcher_pid = os.getpid()


@dataclass(frozen=True)
class SweepOptions:
    """`sweep.*` in `conf/config.yaml`: what a multirun does about failed and earlier jobs."""

    resume: bool = False  # skip jobs with a FINISHED run of the same config under the same parent; rerun the rest
    fail_fast: bool = False  # stop at the first failing job instead of recording it and going on

    @classmethod
    def of(cls, config: Any) -> SweepOptions:
        """The options of a composed config (absent ones keep their defaults).

        ```pycon
        >>> from omegaconf import OmegaConf
        >>> SweepOptions.of(OmegaConf.create({"sweep": {"resume": True}}))
        SweepOptions(resume=True, fail_fast=False)

        ```
        """
        node = config.get("sweep") or {}
        return cls(resume=bool(node.get("resume", False)), fail_fast=bool(node.get("fail_fast", False)))


class SweepFailed(SystemExit):
    """The sweep ends with status 1: a job failed (raised at the end of the multirun), or — with
    `sweep.fail_fast=true` — stops the sweep now. A `SystemExit`, because Hydra's `run_job` catches
    every `Exception` of a job and its launchers then go on with the next job."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


class JobCancelled(SystemExit):
    """A SIGTERM arrived while a sweep job ran outside Lightning's `fit` (which stops at its next step by
    itself): raised by the job's signal handler, like `KeyboardInterrupt` for Ctrl-C. A `SystemExit`,
    so the run ends KILLED (`lossforge.tracking.runs.mlflow_run`) and Hydra's `run_job` lets it pass."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def sweep_hash(task_overrides: Sequence[str]) -> str:
    """What identifies a sweep command for `sweep.resume`: the sha256 of its task overrides, sorted, without
    those of keys the config hash leaves out (`sweep.resume` itself, `verbose`, …). Hydra's own overrides
    (`hydra/launcher=parallel`, `hydra.sweep.dir=…`) are not task overrides: a sweep may be resumed under
    another launcher.

    ```pycon
    >>> same = sweep_hash(["seed=0", "loss=l1,l2", "sweep.resume=true", "verbose=true"])
    >>> sweep_hash(["loss=l1,l2", "seed=0"]) == same
    True
    >>> sweep_hash(["loss=l1,l2"]) == sweep_hash(["loss=l1,huber"])
    False

    ```
    """
    return hashlib.sha256(json.dumps(job_key(task_overrides), ensure_ascii=True).encode("ascii")).hexdigest()


def _excluded(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return any(key == dotted or key.startswith(f"{dotted}.") for dotted in EXCLUDED)


def latest_parent(candidates: Sequence[Run]) -> tuple[Run | None, list[Run]]:
    """The parent run `sweep.resume` continues among `candidates` (parents with the same sweep hash):
    the most recently started; and the others, left alone.
    """
    ordered = sorted(candidates, key=lambda run: run.info.start_time or 0, reverse=True)
    return (ordered[0] if ordered else None), ordered[1:]


def earlier_runs(client: MlflowClient, parent_run_id: str, digest: str, job: SweepJob) -> list[Run]:
    """The live child runs of `parent_run_id` that are this job's earlier attempts: those with its config
    hash `digest`, and unfinished ones with its overrides — a job that failed before its plugin loaded was
    composed without the plugin's parameter defaults, so its hash differs from the fixed job's."""
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    children = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    own = job_key(recordable_overrides(job.overrides))  # as its tag records them
    return [
        child
        for child in children
        if child.data.tags.get(CONFIG_HASH_TAG) == digest
        or (child.info.status != "FINISHED" and job_key(child.data.tags.get("hydra.overrides", "").split()) == own)
    ]


def job_key(overrides: Sequence[str]) -> tuple[str, ...]:
    """A job's overrides, sorted, without those the config hash leaves out (`sweep.resume=true`, …).

    ```pycon
    >>> job_key(["seed=1", "loss=l1", "sweep.resume=true"])
    ('loss=l1', 'seed=1')

    ```
    """
    return tuple(sorted(override for override in overrides if not _excluded(override)))


def split_for_resume(runs: Sequence[Run], digest: str) -> tuple[Run | None, list[Run]]:
    """Which earlier run holds a job — the oldest FINISHED one with its config hash `digest` — and which
    attempts are unfinished (FAILED, KILLED, or RUNNING though no process runs them any more) and to be
    superseded by a rerun. With a FINISHED run nothing is superseded: the job is skipped.
    """
    ordered = sorted(runs, key=lambda run: run.info.start_time or 0)
    finished = [
        run for run in ordered if run.info.status == "FINISHED" and run.data.tags.get(CONFIG_HASH_TAG) == digest
    ]
    if finished:
        return finished[0], []
    return None, [run for run in ordered if run.info.status != "FINISHED"]


def supersede(client: MlflowClient, runs: Sequence[Run], job: SweepJob) -> None:
    """Take earlier unfinished attempts of a job out of the sweep before it runs again: a RUNNING one (its
    process died) is marked KILLED, each is tagged `lossforge.superseded_by_resume` and moved to MLflow's
    deleted runs, from which `MlflowClient().restore_run(run_id)` brings it back."""
    for run in runs:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="KILLED")
        note = f"rerun by sweep.resume as job {job.job_num} of {job.sweep_dir}"
        client.set_tag(run.info.run_id, SUPERSEDED_TAG, note)
        client.set_tag(run.info.run_id, OUTCOME_TAG, Outcome.SUPERSEDED.value)  # docs/decisions.md §2
        client.delete_run(run.info.run_id)
        log.info("resume   earlier %s run %s of this job superseded", run.info.status, run.info.run_id)


def run_sweep_job(
    job: SweepJob,
    cfg: DictConfig,
    train: Callable[[Mapping[str, str]], dict[str, float]],
    *,
    options: SweepOptions,
    tracking_uri: str,
    quiet_errors: tuple[type[BaseException], ...] = (),
) -> dict[str, float] | None:
    """Run one sweep job: `train(tags)` with the job's config hash among its tags — or not at all, when
    `options.resume` (`sweep.resume=true`) finds a FINISHED run of the same config under the sweep's parent.

    Returns the metrics of the run (or of the run that already holds the job), or `None` if it failed: the
    failure is recorded as a FAILED child run (created here if `train` failed before it made one) and the
    sweep goes on. With `options.fail_fast` it raises [SweepFailed][lossforge.sweeps.jobs.SweepFailed] instead,
    which ends the sweep. Errors of `quiet_errors` (bad input) and of a tracking server that does not answer
    (`UNREACHABLE`, unless `quiet_errors` is empty) are logged as one line, others with their traceback.
    Without a parent run (no `MlflowSweepCallback`) an error propagates, as Hydra's own jobs do.
    """
    digest = config_hash(cfg)
    tags = {CONFIG_HASH_TAG: digest}
    if job.parent_run_id is None:
        return train(tags)
    client = MlflowClient(tracking_uri=tracking_uri)
    if options.resume:
        holder, unfinished = split_for_resume(earlier_runs(client, job.parent_run_id, digest, job), digest)
        if holder is not None:
            print(
                f"job {job.job_num} skipped (sweep.resume): run {holder.info.run_id} ({holder.info.run_name}) "
                f"already FINISHED with this config (hash {digest[:12]})",
                flush=True,
            )
            return {key: float(value) for key, value in holder.data.metrics.items()}
        supersede(client, unfinished, job)
    started_ms = int(time.time() * 1000)
    try:
        with _cancellable(job):
            return train(tags)
    except SystemExit as stop:
        if not _by_sigterm(stop) or _launcher_pid == os.getpid():
            raise  # not a cancellation, or the sweep's own process: the SIGTERM ends the sweep
        run_name = run_name_for(cfg, _default_run_name(cfg))
        run_id = _failed_run(
            client, job, cfg, digest, CANCELLED, run_name=run_name, since_ms=started_ms, status="KILLED"
        )
        print(f"{run_name}: KILLED  {CANCELLED}  (run {run_id})", flush=True)
        _stop_if_fail_fast(options, job, f"was {CANCELLED}")
        return None  # a result: submitit writes its result file, and the sweep's end reports the job
    except Exception as error:
        message = scrub_secrets(f"{type(error).__name__}: {error}")[:ERROR_LENGTH]
        # A tracking server that stopped answering is the environment, not a bug: one line, as for bad input
        # (unless LOSSFORGE_TRACEBACK=1, which empties quiet_errors).
        quiet = (*quiet_errors, *UNREACHABLE) if quiet_errors else ()
        log.error("job %d failed: %s", job.job_num, message, exc_info=not isinstance(error, quiet))
        run_name = run_name_for(cfg, _default_run_name(cfg))
        run_id = _failed_run(client, job, cfg, digest, message, run_name=run_name, since_ms=started_ms)
        print(f"{run_name}: FAILED  {' '.join(message.split())[:200]}  (run {run_id})", flush=True)
        _stop_if_fail_fast(options, job, "failed", f": {message}")
        return None


def _stop_if_fail_fast(options: SweepOptions, job: SweepJob, what: str, detail: str = "") -> None:
    """With `sweep.fail_fast=true`, end the sweep at this job ([SweepFailed][lossforge.sweeps.jobs.SweepFailed]);
    else nothing."""
    if options.fail_fast:
        print(f"Sweep stopped at job {job.job_num} (sweep.fail_fast=true).", flush=True)
        raise SweepFailed(f"job {job.job_num} {what} and sweep.fail_fast=true{detail}")


def _cancellable(job: SweepJob) -> contextlib.AbstractContextManager[None]:
    """While a job trains: a SIGTERM is logged and, unless Lightning's `fit` handles it (it wraps this
    handler and stops at its next step with `SIGTERMException`), raises
    [JobCancelled][lossforge.sweeps.jobs.JobCancelled]. This replaces submitit's own SIGTERM handler, which only
    logs "Bypassing signal SIGTERM" and lets the job run on until SLURM's SIGKILL; submitit's SIGUSR2 handler
    (checkpoint and requeue before a time limit) is left alone. Outside the main thread (where no handler can be set):
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _sigterm_handler(job)


@contextlib.contextmanager
def _sigterm_handler(job: SweepJob) -> Iterator[None]:
    def cancel(signum: int, frame: FrameType | None) -> None:
        log.warning("job %d: SIGTERM (scancel?): its run ends KILLED", job.job_num)
        if signal.getsignal(signal.SIGTERM) is cancel:  # not inside Lightning's fit, which stops by itself
            raise JobCancelled

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _by_sigterm(stop: SystemExit) -> bool:
    """Whether `stop` ended a job because of a SIGTERM: [JobCancelled][lossforge.sweeps.jobs.JobCancelled], or
    Lightning's `SIGTERMException` (looked up only if Lightning is imported: this module runs without it). Any other
    `SystemExit` is not: submitit's SIGUSR2 handler (a job near its time limit, or preempted) requeues the
    job and exits with one, and the requeued job must run again, not be reported as cancelled."""
    lightning = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return isinstance(stop, JobCancelled) or (lightning is not None and isinstance(stop, lightning.SIGTERMException))


def _failed_run(
    client: MlflowClient,
    job: SweepJob,
    cfg: DictConfig,
    digest: str,
    message: str,
    *,
    run_name: str,
    since_ms: int,
    status: str = "FAILED",
) -> str | None:
    """The FAILED (or `status`) child run of this attempt at `job`: the one `train` made (it records
    its own error; a KILLED one gets `message` as its error instead), or — when it failed before making
    one — a new run with the job's config, tags and `message`, so that the failure shows in the sweep and
    `sweep.resume` finds it. `None` if the store cannot be reached."""
    assert job.parent_run_id is not None
    try:
        experiment_id = client.get_run(job.parent_run_id).info.experiment_id
        made = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`mlflow.parentRunId` = '{job.parent_run_id}' and tags.`{CONFIG_HASH_TAG}` = '{digest}' "
                f"and tags.`hydra.job_num` = '{job.job_num}' and attributes.start_time >= {since_ms}"
            ),
        )
        if made:
            if status != "FAILED":
                client.set_tag(made[0].info.run_id, ERROR_TAG, message)
            return str(made[0].info.run_id)
        tags = {
            **run_context_tags(job),
            CONFIG_HASH_TAG: digest,
            ERROR_TAG: message,
            "loss": str(cfg.loss.get("name")),
            "dataset": str(cfg.dataset.get("name")),
        }
        run = client.create_run(
            experiment_id, run_name=run_name, tags={key: scrub_secrets(str(value)) for key, value in tags.items()}
        )
        params, _ = params_for_mlflow(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        for start in range(0, len(params), 100):
            client.log_batch(run.info.run_id, params=params[start : start + 100])
        client.set_terminated(run.info.run_id, status=status)
        return str(run.info.run_id)
    except Exception as error:  # the store itself may be what failed: the sweep still goes on
        log.error("job %d: its failure could not be recorded in MLflow: %s", job.job_num, error)
        return None


def _default_run_name(cfg: DictConfig) -> str:
    """The name `train` gives a run (`lossforge.training.run.default_run_name`), read lazily: the sweep
    module runs in the launcher process, which does not import Lightning."""
    from lossforge.training.run import default_run_name

    return default_run_name(cfg)
