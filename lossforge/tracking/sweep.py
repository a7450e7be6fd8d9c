"""Sweeps: one parent MLflow run per Hydra multirun, and each job's place in it (``SweepJob``).

The parent run's id reaches the jobs as a file in the sweep directory (``SWEEP_RECORD``), written before any
job starts: the basic launcher's jobs in this process, joblib's worker processes and submitit/SLURM jobs on
other machines (the sweep directory is on a shared filesystem) all read it the same way.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow import MlflowClient
from mlflow.entities import Param
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from omegaconf import DictConfig

from lossforge.tracking.secrets import redact_uri
from lossforge.tracking.store import default_artifact_location, get_or_create_experiment, resolve_tracking_uri

log = logging.getLogger("lossforge")

#: The file in the sweep directory that names the sweep's parent run: ``{"parent_run_id", "tracking_uri"}``.
SWEEP_RECORD = "lossforge_sweep.json"


@dataclass(frozen=True)
class SweepJob:
    """One job of a Hydra multirun: its sweep, its number, its overrides, and the sweep's parent MLflow run."""

    sweep_dir: str  # hydra.sweep.dir as Hydra resolved it (relative to the directory the sweep started in)
    job_num: int  # 0, 1, … in launch order
    overrides: tuple[str, ...]  # this job's own overrides, e.g. ("loss=focal", "seed=1")
    parent_run_id: str | None  # None when no MlflowSweepCallback ran (it was removed from the config)


def sweep_job(hydra_config: Any) -> SweepJob | None:
    """This job's place in its sweep, from ``hydra_config`` (``HydraConfig.get()`` inside a job); None
    unless Hydra runs in MULTIRUN mode.

    Example:
        >>> from omegaconf import OmegaConf
        >>> sweep_job(OmegaConf.create({"mode": RunMode.RUN})) is None
        True
    """
    if hydra_config.mode != RunMode.MULTIRUN:
        return None
    record_path = _record_path(hydra_config)
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    return SweepJob(
        sweep_dir=str(hydra_config.sweep.dir),
        job_num=int(hydra_config.job.num),
        overrides=tuple(hydra_config.overrides.task),
        parent_run_id=record.get("parent_run_id"),
    )


def _record_path(hydra_config: Any) -> Path:
    """``SWEEP_RECORD`` in the sweep directory; a relative one is relative to where the sweep started
    (``hydra.runtime.cwd``), wherever a job runs."""
    return Path(hydra_config.runtime.cwd) / str(hydra_config.sweep.dir) / SWEEP_RECORD


def _write_record(path: Path, record: dict[str, str]) -> None:
    """Write ``record`` as JSON in one step: a job never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)  # the launcher creates the sweep directory after us
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)


class MlflowSweepCallback(Callback):
    """Hydra callback: one parent MLflow run per multirun, every job a child of it.

    The store and experiment are created here, once, before any job starts, so parallel jobs never race
    to create them; the parent run's id reaches the jobs through ``SWEEP_RECORD`` in the sweep directory
    (read by ``sweep_job``).
    """

    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.parent_run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        tracking_uri = resolve_tracking_uri(config.logger.get("tracking_uri"), base_dir=Path.cwd())
        self.client = MlflowClient(tracking_uri=tracking_uri)
        location = default_artifact_location(config.logger.get("artifact_location"), tracking_uri, Path.cwd())
        experiment_id = get_or_create_experiment(self.client, config.logger.experiment, location)
        overrides = " ".join(config.hydra.overrides.task)
        run = self.client.create_run(
            experiment_id,
            run_name=f"sweep {overrides}"[:250],
            tags={"lossforge.sweep": "parent", "hydra.sweep_dir": str(config.hydra.sweep.dir)},
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
        _write_record(_record_path(config.hydra), record)
        atexit.register(self._end_if_abandoned)  # a job that exits the process must not leave it RUNNING
        log.info("mlflow   sweep parent run %s", self.parent_run_id)

    def _end_if_abandoned(self) -> None:
        if self.client is not None and self.parent_run_id is not None:
            if self.client.get_run(self.parent_run_id).info.status == "RUNNING":
                self.client.set_terminated(self.parent_run_id, status="FAILED")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.client is None or self.parent_run_id is None:
            return
        parent = self.client.get_run(self.parent_run_id)
        children = self.client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'"
        )
        failed = [child for child in children if child.info.status != "FINISHED"]
        self.client.set_tag(self.parent_run_id, "lossforge.children", str(len(children)))
        self.client.set_terminated(self.parent_run_id, status="FAILED" if failed else "FINISHED")
        atexit.unregister(self._end_if_abandoned)
        print(self._comparison(config, children), end="", flush=True)
        print(sweep_summary(self.parent_run_id, len(children), [child.info.run_name for child in failed]), flush=True)

    def _comparison(self, config: DictConfig, children: list[Any]) -> str:
        """``lossforge compare`` on the sweep (over seeds when its runs differ in seed): the table is printed
        and each group's mean and CI logged on the parent, so the runs table shows who won. A sweep whose
        runs cannot be compared (one run, no comparable metric) says why instead."""
        from lossforge.evaluation import compare

        assert self.client is not None and self.parent_run_id is not None
        seeds = {child.data.params.get("seed") for child in children}
        arguments = [self.parent_run_id, "--tracking-uri", self.client.tracking_uri]
        arguments += [
            "--experiment",
            config.logger.experiment,
            "--output",
            str(Path(config.hydra.sweep.dir) / "compare.png"),
        ]
        if len(seeds) > 1 and len(seeds) < len(children):
            arguments += ["--mean-over", "seed"]
        try:
            with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.redirect_stderr(io.StringIO()):
                compare.main(arguments)
        except (SystemExit, Exception) as error:  # the sweep itself succeeded: say why, do not fail it
            return f"\n(no comparison: {error})\n"
        return "\n" + printed.getvalue()


def sweep_summary(parent_run_id: str, runs: int, failed: list[str]) -> str:
    """What a sweep prints at its end: how many runs finished, which failed, and how to compare them.

    >>> print(sweep_summary("abc", 3, ["focal-digits-2"]))
    <BLANKLINE>
    Sweep finished: 2 of 3 runs FINISHED; not finished: focal-digits-2
    MLflow parent run: abc
    Compare them:      lossforge compare abc --mean-over seed   (drop --mean-over when there is one seed)
    """
    status = f"{runs - len(failed)} of {runs} runs FINISHED" + (
        f"; not finished: {', '.join(failed)}" if failed else ""
    )
    return "\n".join(
        [
            "",
            f"Sweep finished: {status}",
            f"MLflow parent run: {parent_run_id}",
            f"Compare them:      lossforge compare {parent_run_id} --mean-over seed   "
            "(drop --mean-over when there is one seed)",
        ]
    )
