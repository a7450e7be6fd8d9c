"""A Hydra multirun as one parent MLflow run with each job its child: the parent run's life, and how a sweep
survives a failing job and resumes (each job's place in it, `SweepJob`, is `lossforge.tracking.sweep_record`).

The parent run's id reaches the jobs as a file in the sweep directory (`SWEEP_RECORD`), written before any
job starts: the basic launcher's jobs in this process, the parallel launcher's workers and submitit/SLURM jobs on
other machines (the sweep directory is on a shared filesystem) all read it the same way.

Failures and resume live in the job ([run_sweep_job][lossforge.sweeps.jobs.run_sweep_job]) and in the callback
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
  `lossforge.sweep_hash` (the sweep's command-line overrides, [sweep_hash][lossforge.sweeps.jobs.sweep_hash])
  matches; with none, the sweep starts a new parent. The parent ends FAILED while any child is not FINISHED, FINISHED
  once all are.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.entities import Param, Run, RunTag
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from omegaconf import DictConfig

from lossforge.preflight import sweep_refusal
from lossforge.run_dirs import register_launch_id
from lossforge.tracking.secrets import (
    install_log_scrubber,
    raw_strings,
    recordable_overrides,
    redact_uri,
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
from lossforge.tracking.sweep_record import record_path as _record_path
from lossforge.tracking.sweep_record import write_record as _write_record

if TYPE_CHECKING:
    from lossforge.evaluation.compare.report import ComparisonReport

from lossforge.sweeps.jobs import (
    SWEEP_HASH_TAG,
    UNREACHABLE,
    SweepFailed,
    SweepOptions,
    latest_parent,
    mark_launcher,
    sweep_hash,
)
from lossforge.sweeps.summary import closing_hint, failure_table, sweep_summary

log = logging.getLogger("lossforge")

register_launch_id()  # a job process unpickles this module's callback before it resolves hydra.sweep.dir


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
        mark_launcher()
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
