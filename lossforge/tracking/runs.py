"""What one run records, and how it ends: params from the config, metrics, tags, artifacts, and a final status."""

from __future__ import annotations

import enum
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from lossforge.tracking.secrets import recordable_overrides, scrub_secrets
from lossforge.tracking.store import get_or_create_experiment

if TYPE_CHECKING:
    from lossforge.tracking.sweep_record import SweepJob

OUTCOME_TAG = "lossforge.outcome"
"""How a run ended, one machine-readable word (`docs/decisions.md` §2), read by `compare`, the protocol's
verdict and resume. The free-text reason stays in `ERROR_TAG`."""
ERROR_TAG = "lossforge.error"


class Outcome(enum.StrEnum):
    """How a run ended; each member *is* its tag value (`Outcome.KILLED == "killed"`).

    ```pycon
    >>> [outcome.value for outcome in Outcome]
    ['finished', 'diverged', 'failed', 'killed', 'superseded']
    >>> Outcome.DIVERGED.mlflow_status
    'FAILED'

    ```
    """

    FINISHED = "finished"  #: trained and tested to the end
    DIVERGED = "diverged"  #: the NaN / explosion guard stopped it: an outcome of the loss
    FAILED = "failed"  #: an error (bad input, a plugin's exception, a full disk, a lost server)
    KILLED = "killed"  #: a signal (Ctrl-C, SIGTERM, scancel) or a process found dead later
    SUPERSEDED = "superseded"  #: replaced by a resumed run of the same configuration

    @property
    def mlflow_status(self) -> str | None:
        """The MLflow run status that goes with it (None: a superseded run keeps the status it had)."""
        return {
            "finished": "FINISHED",
            "diverged": "FAILED",
            "failed": "FAILED",
            "killed": "KILLED",
            "superseded": None,
        }[self.value]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys.

    ```pycon
    >>> flatten({"loss": {"name": "focal", "gamma": 2.0}, "seed": 0})
    {'loss.name': 'focal', 'loss.gamma': 2.0, 'seed': 0}

    ```
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_for_mlflow(config: Mapping[str, Any]) -> tuple[list[Param], list[str]]:
    """MLflow params from a config, and the keys whose values were too long (kept in `config.yaml`)."""
    params, too_long = [], []
    for key, value in flatten(config).items():
        text = "null" if value is None else scrub_secrets(str(value))
        if len(text) > MAX_PARAM_VAL_LENGTH:
            too_long.append(key)
            text = f"<{len(text)} characters: see config.yaml>"
        params.append(Param(key, text))
    return params, too_long


@dataclass
class RunHandle:
    """An MLflow run in progress: the client, its id, and the experiment it belongs to."""

    client: MlflowClient
    run_id: str
    experiment_id: str
    tracking_uri: str

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for start in range(0, len(batch), 1000):  # MLflow's per-request limit
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_params(self, params: list[Param]) -> None:
        for start in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, scrub_secrets(str(v))) for k, v in tags.items()])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, scrub_secrets(text), artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)


@contextmanager
def mlflow_run(
    *,
    tracking_uri: str,
    experiment: str,
    run_name: str | None,
    tags: Mapping[str, Any],
    artifact_location: str | None = None,
    resume_run_id: str | None = None,
) -> Iterator[RunHandle]:
    """Open a run (or reopen `resume_run_id`); it ends FINISHED, FAILED (the error recorded in the
    `lossforge.error` tag) or KILLED — never left RUNNING."""
    client = MlflowClient(tracking_uri=tracking_uri)
    if resume_run_id is not None:
        experiment_id = client.get_run(resume_run_id).info.experiment_id
        client.update_run(resume_run_id, status="RUNNING")
        client.set_tag(resume_run_id, "lossforge.resumed", "true")
        handle = RunHandle(client, resume_run_id, experiment_id, tracking_uri)
    else:
        experiment_id = get_or_create_experiment(client, experiment, artifact_location)
        tags = {key: scrub_secrets(str(value)) for key, value in tags.items()}
        run = client.create_run(experiment_id, tags=tags, run_name=run_name)
        handle = RunHandle(client, run.info.run_id, experiment_id, tracking_uri)
    try:
        yield handle
    except (KeyboardInterrupt, SystemExit) as interruption:
        handle.set_tags({ERROR_TAG: f"interrupted ({type(interruption).__name__})", OUTCOME_TAG: Outcome.KILLED})
        client.set_terminated(handle.run_id, status="KILLED")
        raise
    except BaseException as error:
        outcome = outcome_of(error)
        handle.set_tags({ERROR_TAG: scrub_secrets(f"{type(error).__name__}: {error}")[:5000], OUTCOME_TAG: outcome})
        client.set_terminated(handle.run_id, status=outcome.mlflow_status or "FAILED")
        raise
    handle.set_tags({OUTCOME_TAG: Outcome.FINISHED})
    client.set_terminated(handle.run_id, status="FINISHED")


def outcome_of(error: BaseException) -> Outcome:
    """How a run that raised `error` ended: the error's own `outcome` (the NaN and explosion guards say
    `"diverged"`), `killed` for a signal, else `failed`.

    ```pycon
    >>> outcome_of(ValueError("bad input")), outcome_of(KeyboardInterrupt())
    (<Outcome.FAILED: 'failed'>, <Outcome.KILLED: 'killed'>)

    ```
    """
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return Outcome.KILLED
    declared = getattr(error, "outcome", None)
    return Outcome(declared) if declared in {outcome.value for outcome in Outcome} else Outcome.FAILED


def git_commit(directory: Path) -> str | None:
    """The commit checked out at `directory` (with `-dirty` for local changes), or None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def run_context_tags(job: SweepJob | None) -> dict[str, str]:
    """Where a run comes from: lossforge's git commit and, for a sweep `job`, the sweep, the job and the parent
    sweep run (`mlflow.parentRunId` nests the run under it in the dashboard)."""
    tags: dict[str, str] = {}
    commit = git_commit(Path(__file__).resolve().parent)
    if commit:
        tags["lossforge.git_commit"] = commit
    if job is not None:
        tags["hydra.sweep_dir"] = job.sweep_dir
        tags["hydra.job_num"] = str(job.job_num)
        tags["hydra.overrides"] = " ".join(recordable_overrides(job.overrides))
        if job.parent_run_id is not None:
            tags["mlflow.parentRunId"] = job.parent_run_id
    return tags
