"""A sweep's record: the file in the sweep directory that names its parent MLflow run, and each job's place
in the sweep ([SweepJob][lossforge.tracking.sweep_record.SweepJob]), read back from it.

MLflow bookkeeping only — the sweep's orchestration (its parent run's life, failures, resume) is
`lossforge.sweeps`. A run reads its [SweepJob][lossforge.tracking.sweep_record.SweepJob] to become a child of the
sweep's parent run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.types import RunMode

from lossforge.tracking.secrets import raw_strings

SWEEP_RECORD = "lossforge_sweep.json"
"""The file in the sweep directory that names the sweep's parent run: `{"parent_run_id", "tracking_uri"}`."""


@dataclass(frozen=True)
class SweepJob:
    """One job of a Hydra multirun: its sweep, its number, its overrides, and the sweep's parent MLflow run."""

    sweep_dir: str  # hydra.sweep.dir as Hydra resolved it (relative to the directory the sweep started in)
    job_num: int  # 0, 1, … in launch order
    overrides: tuple[str, ...]  # this job's own overrides, e.g. ("loss=focal", "seed=1")
    parent_run_id: str | None  # None when no MlflowSweepCallback ran (it was removed from the config)


def sweep_job(hydra_config: Any) -> SweepJob | None:
    """This job's place in its sweep, from `hydra_config` (`HydraConfig.get()` inside a job); None
    unless Hydra runs in MULTIRUN mode.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> sweep_job(OmegaConf.create({"mode": RunMode.RUN})) is None
        True
    """
    if hydra_config.mode != RunMode.MULTIRUN:
        return None
    path = record_path(hydra_config)
    record = json.loads(path.read_text()) if path.is_file() else {}
    return SweepJob(
        sweep_dir=str(hydra_config.sweep.dir),
        job_num=int(hydra_config.job.num),
        overrides=tuple(raw_strings(hydra_config.overrides.task)),  # as typed: never a resolved secret
        parent_run_id=record.get("parent_run_id"),
    )


def record_path(hydra_config: Any) -> Path:
    """`SWEEP_RECORD` in the sweep directory; a relative one is relative to where the sweep started
    (`hydra.runtime.cwd`), wherever a job runs."""
    return Path(hydra_config.runtime.cwd) / str(hydra_config.sweep.dir) / SWEEP_RECORD


def write_record(path: Path, record: dict[str, str]) -> None:
    """Write `record` as JSON in one step: a job never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)  # the launcher creates the sweep directory after us
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)
