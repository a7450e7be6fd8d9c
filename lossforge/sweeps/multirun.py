"""A Hydra multirun as one parent MLflow run with each job its child: the parent run's life, and how a sweep
survives a failing job and resumes (each job's place in it, `SweepJob`, is `lossforge.tracking.sweep_record`).

The parent run's id reaches the jobs as a file in the sweep directory (`SWEEP_RECORD`), written before any
job starts: the basic launcher's jobs in this process, the parallel launcher's workers and submitit/SLURM jobs on
other machines (the sweep directory is on a shared filesystem) all read it the same way.

Failures and resume live in the job ([run_sweep_job][lossforge.sweeps.multirun.run_sweep_job]) and in the callback
([MlflowSweepCallback][lossforge.sweeps.multirun.MlflowSweepCallback]), never in a launcher, so the basic, parallel and
submitit/SLURM launchers behave alike:

* A job that raises is recorded as a FAILED child run with the error in `lossforge.error` — a run is
  created for it if it failed before it had one (a plugin that does not load) — and the sweep goes on.
  At the end the callback prints a table of the failed jobs and the command exits with status 1.
  `sweep.fail_fast=true` stops the sweep at the first failure instead.
* Every child run carries `lossforge.config_hash` ([lossforge.tracking.config_hash][]). With
  `sweep.resume=true` a job whose hash already has a FINISHED child under the parent is skipped without
  training; a FAILED, KILLED or still-RUNNING (its process died) child with that hash is superseded — tagged
  `lossforge.superseded_by_resume` and moved to MLflow's deleted runs (restorable) — and the job runs again.
* A job cancelled by SIGTERM (`scancel` of its SLURM job; SLURM sends SIGKILL `KillWait` seconds
  later) ends its child run KILLED with `lossforge.error` "cancelled (SIGTERM)" and, when it runs in a
  process of its own (a SLURM or parallel-launcher job), *returns* a failure result instead of exiting: submitit then
  writes the job's result file and the submitting command collects it — without that file submitit could
  only learn of the cancellation from `sacct`, which a cluster without accounting does not answer, and
  would wait forever. The sweep's end then lists the job and exits with status 1. A job that runs in the
  sweep's own process (the basic launcher) lets the SIGTERM end the whole sweep, as before.
* A tracking server that does not answer at the sweep's end (or when an abandoned parent is closed at
  exit) gets one line saying to resume the sweep once it is back, and the command exits with status 1.
* The parent resumed is the one named in `SWEEP_RECORD` when the sweep directory is given again
  (`hydra.sweep.dir=<the earlier one>`), else the most recent parent in the experiment whose
  `lossforge.sweep_hash` (the sweep's command-line overrides, [sweep_hash][lossforge.sweeps.multirun.sweep_hash])
  matches; with none, the sweep starts a new parent. The parent ends FAILED while any child is not FINISHED, FINISHED
  once all are.
"""

from __future__ import annotations

import atexit
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
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.entities import Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from omegaconf import DictConfig, OmegaConf

from lossforge.preflight import sweep_refusal
from lossforge.run_dirs import register_launch_id
from lossforge.tracking.config_hash import EXCLUDED, config_hash
from lossforge.tracking.runs import OUTCOME_TAG, Outcome, params_for_mlflow, run_context_tags
from lossforge.tracking.secrets import (
    install_log_scrubber,
    raw_strings,
    recordable_overrides,
    redact_uri,
    run_name_for,
    scrub_secrets,
)
from lossforge.tracking.store import (
    TrackingUnavailableError,
    dashboard_command,
    default_artifact_location,
    get_or_create_experiment,
    open_sqlite_store,
    resolve_tracking_uri,
)
from lossforge.tracking.sweep_record import SweepJob
from lossforge.tracking.sweep_record import record_path as _record_path
from lossforge.tracking.sweep_record import write_record as _write_record

if TYPE_CHECKING:
    from lossforge.evaluation.compare.report import ComparisonReport

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
register_launch_id()  # a job process unpickles this module's callback before it resolves hydra.sweep.dir


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


class MlflowSweepCallback(Callback):
    """Hydra callback: one parent MLflow run per multirun, every job a child of it.

    The store and experiment are created here, once, before any job starts, so parallel jobs never race
    to create them; the parent run's id reaches the jobs through `SWEEP_RECORD` in the sweep directory
    (read by `sweep_job`).
    """

    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _launcher_pid
        _launcher_pid = os.getpid()
        install_log_scrubber()  # before the launcher logs each job's overrides (``#0 : +db_password=…``)
        refused = sweep_refusal(config)  # every job checked before the first trains (lossforge.preflight)
        if refused:
            print(f"lossforge: error: {scrub_secrets(refused)}", file=sys.stderr, flush=True)
            raise SystemExit(2)
        if str((config.hydra.get("launcher") or {}).get("_target_", "")).endswith(".ParallelLauncher"):
            from lossforge.sweeps.parallel import start_fork_server

            start_fork_server()  # its imports for the jobs overlap the store and parent run set up here
        try:
            self._start_parent(config)
        except TrackingUnavailableError as error:  # a store that cannot be used: its paragraph, no traceback
            print(f"lossforge: error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    def _start_parent(self, config: DictConfig) -> None:
        tracking_uri = resolve_tracking_uri(config.logger.get("tracking_uri"), base_dir=Path.cwd())
        open_sqlite_store(tracking_uri)  # before the first client, which creates a new store without a lock
        self.client = MlflowClient(tracking_uri=tracking_uri)
        location = default_artifact_location(config.logger.get("artifact_location"), tracking_uri, Path.cwd())
        experiment_id = get_or_create_experiment(self.client, config.logger.experiment, location)
        # As typed, secret values replaced: the parent's name and params are read by anyone with dashboard access.
        task_overrides = recordable_overrides(raw_strings(config.hydra.overrides.task))
        overrides = " ".join(task_overrides)
        digest = sweep_hash(task_overrides)
        record_path = _record_path(config.hydra)
        parent = None
        if SweepOptions.of(config).resume:
            parent = self._parent_to_resume(experiment_id, digest, record_path)
        if parent is not None:
            self.parent_run_id = parent.info.run_id
            resumed = int(parent.data.tags.get("lossforge.resumed", "0")) + 1
            self.client.update_run(self.parent_run_id, status="RUNNING")
            self.client.log_batch(
                self.parent_run_id,
                tags=[
                    RunTag("lossforge.resumed", str(resumed)),
                    RunTag("lossforge.resumed_in", str(config.hydra.sweep.dir)),
                ],
            )
        else:
            run = self.client.create_run(
                experiment_id,
                run_name=f"sweep {overrides}"[:250],
                tags={
                    "lossforge.sweep": "parent",
                    "hydra.sweep_dir": str(config.hydra.sweep.dir),
                    SWEEP_HASH_TAG: digest,
                },
            )
            self.parent_run_id = run.info.run_id
            self.client.log_batch(
                self.parent_run_id,
                params=[
                    Param("overrides", overrides[:MAX_PARAM_VAL_LENGTH]),
                    Param("sweep_dir", str(config.hydra.sweep.dir)),
                ],
            )
        record = {"parent_run_id": self.parent_run_id, "tracking_uri": redact_uri(tracking_uri)}
        _write_record(record_path, record)
        atexit.register(self._end_if_abandoned)  # a job that exits the process must not leave it RUNNING
        log.info("mlflow   sweep parent run %s%s", self.parent_run_id, " (resumed)" if parent is not None else "")

    def _parent_to_resume(self, experiment_id: str, digest: str, record_path: Path) -> Run | None:
        """The parent run `sweep.resume` continues: the one the sweep directory's record names (the
        directory given again with `hydra.sweep.dir=`), else the latest parent with the same sweep hash."""
        assert self.client is not None
        if record_path.is_file():
            named = json.loads(record_path.read_text()).get("parent_run_id")
            with contextlib.suppress(Exception):  # a record from another store: fall back to the hash
                run = self.client.get_run(named)
                if run.info.lifecycle_stage == "active" and run.info.experiment_id == experiment_id:
                    log.info("resume   sweep parent run %s, named in %s", named, record_path)
                    return run
        candidates = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`lossforge.sweep` = 'parent' and tags.`{SWEEP_HASH_TAG}` = '{digest}'",
            order_by=["attributes.start_time DESC"],
        )
        chosen, others = latest_parent(candidates)
        if chosen is None:
            log.info("resume   no earlier sweep with these overrides (sweep hash %s): a new sweep", digest[:12])
        else:
            log.info("resume   sweep parent run %s (sweep hash %s)", chosen.info.run_id, digest[:12])
            if others:
                log.info(
                    "resume   older sweeps with the same overrides left alone: %s",
                    ", ".join(run.info.run_id for run in others),
                )
        return chosen

    def _end_if_abandoned(self) -> None:
        """At exit, a parent still RUNNING (a job ended the process) is marked FAILED; a server that does not
        answer then gets one line, not a traceback."""
        if self.client is not None and self.parent_run_id is not None:
            try:
                if self.client.get_run(self.parent_run_id).info.status == "RUNNING":
                    self.client.set_terminated(self.parent_run_id, status="FAILED")
            except UNREACHABLE:
                print(f"lossforge: error: {self._unreachable()}", file=sys.stderr, flush=True)

    def _unreachable(self) -> str:
        assert self.client is not None
        return (
            f"tracking server {redact_uri(self.client.tracking_uri)} did not answer at the sweep's end; "
            "rerun the same command with sweep.resume=true once it is back"
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.client is None or self.parent_run_id is None:
            return
        atexit.unregister(self._end_if_abandoned)  # reported here instead, once
        try:
            parent = self.client.get_run(self.parent_run_id)
            children = self.client.search_runs(
                [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_run_id}'"
            )
            failed = [child for child in children if child.info.status != "FINISHED"]
            self.client.set_tag(self.parent_run_id, "lossforge.children", str(len(children)))
            self.client.set_tag(self.parent_run_id, "lossforge.failed", str(len(failed)))
            self.client.set_terminated(self.parent_run_id, status="FAILED" if failed else "FINISHED")
        except UNREACHABLE as error:  # Hydra would turn an exception here into a warning, and exit 0
            message = self._unreachable()
            log.debug("tracking server error at the sweep's end: %s", scrub_secrets(str(error)))
            print(f"lossforge: error: {message}", file=sys.stderr, flush=True)
            raise SweepFailed(message) from None
        text, report = self._comparison(config)
        print(text, end="", flush=True)
        unfinished = [child.info.run_name for child in failed]
        print(sweep_summary(self.parent_run_id, len(children), unfinished, hint=closing_hint(report)), flush=True)
        page = {"run_id": parent.info.run_id, "experiment_id": parent.info.experiment_id}  # the parent's own page
        print(f"Dashboard:         {dashboard_command(self.client.tracking_uri, **page)}", flush=True)
        if failed:
            print(failure_table(failed), flush=True)
            raise SweepFailed(f"{len(failed)} of {len(children)} sweep jobs did not finish")

    def _comparison(self, config: DictConfig) -> tuple[str, ComparisonReport | None]:
        """`lossforge compare --log` on the sweep (seeds pooled): the table is printed and the verdict
        logged on the parent, so the dashboard shows who won. A sweep whose runs cannot be compared (one run,
        no comparable metric) says why instead."""
        from lossforge.evaluation.compare.sweep import compare
        from lossforge.evaluation.compare.verdicts import ComparisonError

        assert self.client is not None and self.parent_run_id is not None
        try:
            report = compare(
                self.parent_run_id,
                tracking_uri=self.client.tracking_uri,
                experiment=config.logger.experiment,
                log=True,  # the sweep's own comparison is the one that writes (compare alone only reads)
            )
            plot = report.save_figure(Path(config.hydra.sweep.dir) / "compare.png")
        except ComparisonError as error:  # the sweep itself succeeded: say why, do not fail it
            return f"\n(no comparison: lossforge compare: {error})\n", None
        except Exception as error:
            return f"\n(no comparison: {error})\n", None
        text = "\n" + report.to_text() + "\n" + "".join(f"{line}\n" for line in report.footer(plot))
        return text, report


def closing_hint(report: ComparisonReport | None) -> str:
    """What the sweep's last line adds to `lossforge compare <id>`: the baseline it judged against, and
    the seeds a verdict needs where the sweep ran fewer.

    ```pycon
    >>> closing_hint(None)
    ''

    ```
    """
    if report is None:
        return ""
    if report.baseline is None:
        return "no baseline: name one with --baseline <group>"
    needed = report.seeds_for_a_verdict()
    have = min((group.seeds for group in report.groups), default=0)
    text = f"baseline {report.baseline}"
    if needed is not None and have < needed:
        text += f"; a verdict needs ≥ {needed} seeds per group: add seed={','.join(map(str, range(needed)))}"
    return text


def sweep_summary(parent_run_id: str, runs: int, failed: list[str], *, hint: str = "") -> str:
    """What a sweep prints at its end: how many runs finished, which failed, and how to compare them.

    ```pycon
    >>> print(sweep_summary("abc", 3, ["focal-digits-2"], hint="baseline l2"))
    <BLANKLINE>
    Sweep finished: 2 of 3 runs FINISHED; not finished: focal-digits-2
    MLflow parent run: abc
    Compare them:      lossforge compare abc   (baseline l2)

    ```
    """
    status = f"{runs - len(failed)} of {runs} runs FINISHED" + (
        f"; not finished: {', '.join(failed)}" if failed else ""
    )
    return "\n".join(
        [
            "",
            f"Sweep finished: {status}",
            f"MLflow parent run: {parent_run_id}",
            f"Compare them:      lossforge compare {parent_run_id}" + (f"   ({hint})" if hint else ""),
        ]
    )


def failure_table(failed: Sequence[Run]) -> str:
    """The failed jobs of a sweep, one line each: job number, overrides, status and error (shortened), and
    how to rerun only them."""
    rows = [
        (
            child.data.tags.get("hydra.job_num", "?"),
            child.data.tags.get("hydra.overrides", ""),
            child.info.status,
            " ".join(child.data.tags.get(ERROR_TAG, "(no error recorded: the process died)").split())[:160],
        )
        for child in sorted(failed, key=lambda child: int(child.data.tags.get("hydra.job_num", "0") or 0))
    ]
    return "\n".join(
        [
            "",
            f"Failed jobs ({len(rows)}):",
            *_columns([("job", "overrides", "status", "error"), *rows]),
            "Rerun only these: the same command with sweep.resume=true (finished jobs are skipped).",
        ]
    )


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns, two spaces apart (the last column unpadded).

    ```pycon
    >>> _columns([("job", "error"), ("12", "ValueError: x")])
    ['  job  error', '  12   ValueError: x']

    ```
    """
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]) - 1)]
    padded = [[cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)] for row in rows]
    return ["  " + "  ".join([*cells, row[-1]]) for cells, row in zip(padded, rows, strict=True)]


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
    sweep goes on. With `options.fail_fast` it raises [SweepFailed][lossforge.sweeps.multirun.SweepFailed] instead,
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
    """With `sweep.fail_fast=true`, end the sweep at this job ([SweepFailed][lossforge.sweeps.multirun.SweepFailed]);
    else nothing."""
    if options.fail_fast:
        print(f"Sweep stopped at job {job.job_num} (sweep.fail_fast=true).", flush=True)
        raise SweepFailed(f"job {job.job_num} {what} and sweep.fail_fast=true{detail}")


def _cancellable(job: SweepJob) -> contextlib.AbstractContextManager[None]:
    """While a job trains: a SIGTERM is logged and, unless Lightning's `fit` handles it (it wraps this
    handler and stops at its next step with `SIGTERMException`), raises
    [JobCancelled][lossforge.sweeps.multirun.JobCancelled]. This replaces submitit's own SIGTERM handler, which only
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
    """Whether `stop` ended a job because of a SIGTERM: [JobCancelled][lossforge.sweeps.multirun.JobCancelled], or
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
