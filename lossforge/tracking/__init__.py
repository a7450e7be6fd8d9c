"""MLflow tracking: where runs go, what each run records, and how it ends.

Default store: SQLite at ``outputs/mlflow.db`` with artifacts in ``outputs/mlartifacts`` (current MLflow
refuses the plain-file store). ``logger.tracking_uri=...`` in the config, else ``MLFLOW_TRACKING_URI``,
points runs at a server instead. Each run records the flattened resolved config as params (a value too
long for MLflow is replaced by a pointer to ``config.yaml`` and listed in the ``lossforge.long_params``
tag — nothing is dropped silently), per-epoch metrics with the epoch as step, test metrics, the resolved
config as ``config.yaml``, and ends FINISHED, FAILED (with the error as a tag) or KILLED.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from omegaconf import DictConfig

log = logging.getLogger("lossforge")
DEFAULT_STORE = "outputs/mlflow.db"
DEFAULT_ARTIFACTS = "outputs/mlartifacts"


def resolve_tracking_uri(configured: str | None, *, base_dir: Path) -> str:
    """The tracking URI: the config's, else ``MLFLOW_TRACKING_URI``, else SQLite under ``base_dir``."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    store = (base_dir / DEFAULT_STORE).resolve()
    store.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store}"


def default_artifact_location(configured: str | None, tracking_uri: str, base_dir: Path) -> str | None:
    """Artifacts beside the default SQLite store; a tracking server decides for itself."""
    if configured:
        return configured
    if tracking_uri.startswith("sqlite"):
        return (base_dir / DEFAULT_ARTIFACTS).resolve().as_uri()
    return None


def dashboard_command(tracking_uri: str) -> str:
    """The command that opens the MLflow dashboard on this store (bound to localhost)."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"mlflow ui --backend-store-uri {shlex.quote(tracking_uri)} --host 127.0.0.1 --port 5000"


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created if needed (tolerates a parallel job creating it first)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys.

    >>> flatten({"loss": {"name": "focal", "gamma": 2.0}, "seed": 0})
    {'loss.name': 'focal', 'loss.gamma': 2.0, 'seed': 0}
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_for_mlflow(config: Mapping[str, Any]) -> tuple[list[Param], list[str]]:
    """MLflow params from a config, and the keys whose values were too long (kept in ``config.yaml``)."""
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
    """Open a run (or reopen ``resume_run_id``); it ends FINISHED, FAILED (the error recorded in the
    ``lossforge.error`` tag) or KILLED — never left RUNNING."""
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
        handle.set_tags({"lossforge.error": f"interrupted ({type(interruption).__name__})"})
        client.set_terminated(handle.run_id, status="KILLED")
        raise
    except BaseException as error:
        handle.set_tags({"lossforge.error": scrub_secrets(f"{type(error).__name__}: {error}")[:5000]})
        client.set_terminated(handle.run_id, status="FAILED")
        raise
    client.set_terminated(handle.run_id, status="FINISHED")


class TrackingUnavailableError(ConnectionError):
    """The tracking store cannot be reached or written; raised before any training time is spent."""


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, when the tracking server does not answer within ``timeout`` seconds.

    Any HTTP answer (even 401 or 404) means a server is there; only no answer at all fails.
    """
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnavailableError(
            f"The MLflow tracking server at {redact_uri(tracking_uri)} did not answer within {timeout:.0f} s "
            f"({reason}). Start it, fix MLFLOW_TRACKING_URI / logger.tracking_uri, or unset both to log to "
            f"the local SQLite store (outputs/mlflow.db). Nothing was trained."
        ) from None


def redact_uri(uri: str) -> str:
    """Hide credentials embedded in a URI.

    >>> redact_uri("https://alice:s3cret@mlflow.example:5000/x")
    'https://***@mlflow.example:5000/x'
    """
    scheme, separator, rest = uri.partition("://")
    if separator and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|ACCESS_KEY|CREDENTIAL|AUTH", re.IGNORECASE)


def scrub_secrets(text: str, environment: Mapping[str, str] | None = None) -> str:
    """Replace the values of secret-looking environment variables (tokens, passwords, keys) with ``***``.

    A config may interpolate them (``${oc.env:MLFLOW_TRACKING_TOKEN}``); they must not reach params,
    tags or artifacts, which anyone with dashboard access reads.

    >>> scrub_secrets("token=abc123xyz", {"MY_API_TOKEN": "abc123xyz"})
    'token=***'
    """
    environment = os.environ if environment is None else environment
    for name, value in environment.items():
        if len(value) >= 4 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    return redact_uri(text) if "://" in text and "@" in text else text


PARENT_RUN_ENV = "LOSSFORGE_PARENT_RUN_ID"


def git_commit(directory: Path) -> str | None:
    """The commit checked out at ``directory`` (with ``-dirty`` for local changes), or None outside git."""
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


def run_context_tags() -> dict[str, str]:
    """Where a run comes from: lossforge's git commit, the Hydra sweep and job, the parent sweep run."""
    tags: dict[str, str] = {}
    commit = git_commit(Path(__file__).resolve().parent)
    if commit:
        tags["lossforge.git_commit"] = commit
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra_config = HydraConfig.get()
    except (ImportError, ValueError):  # not running under Hydra (tests, notebooks)
        hydra_config = None
    if hydra_config is not None and str(hydra_config.mode) == "RunMode.MULTIRUN":
        tags["hydra.sweep_dir"] = str(hydra_config.sweep.dir)
        tags["hydra.job_num"] = str(hydra_config.job.num)
        tags["hydra.overrides"] = " ".join(hydra_config.overrides.task)
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent:
        tags["mlflow.parentRunId"] = parent
    return tags


class MlflowSweepCallback(Callback):
    """Hydra callback: one parent MLflow run per multirun, every job a child of it.

    The store and experiment are created here, once, before any job starts, so parallel jobs never race
    to create them; the parent run's id reaches the jobs through ``LOSSFORGE_PARENT_RUN_ID``, which
    launcher worker processes inherit.
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
        os.environ[PARENT_RUN_ENV] = self.parent_run_id
        atexit.register(self._end_if_abandoned)  # a job that exits the process must not leave it RUNNING
        log.info("mlflow   sweep parent run %s", self.parent_run_id)

    def _end_if_abandoned(self) -> None:
        if self.client is not None and self.parent_run_id is not None:
            if self.client.get_run(self.parent_run_id).info.status == "RUNNING":
                self.client.set_terminated(self.parent_run_id, status="FAILED")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.client is None or self.parent_run_id is None:
            return
        os.environ.pop(PARENT_RUN_ENV, None)
        parent = self.client.get_run(self.parent_run_id)
        children = self.client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'"
        )
        failed = [child for child in children if child.info.status != "FINISHED"]
        self.client.set_tag(self.parent_run_id, "lossforge.children", str(len(children)))
        self.client.set_terminated(self.parent_run_id, status="FAILED" if failed else "FINISHED")
        atexit.unregister(self._end_if_abandoned)
