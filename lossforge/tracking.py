"""MLflow tracking: where runs go, what each run records, and how it ends.

Default store: SQLite at ``outputs/mlflow.db`` with artifacts in ``outputs/mlartifacts`` (current MLflow
refuses the plain-file store). ``logger.tracking_uri=...`` in the config, else ``MLFLOW_TRACKING_URI``,
points runs at a server instead. Each run records the flattened resolved config as params (a value too
long for MLflow is replaced by a pointer to ``config.yaml`` and listed in the ``lossforge.long_params``
tag — nothing is dropped silently), per-epoch metrics with the epoch as step, test metrics, the resolved
config as ``config.yaml``, and ends FINISHED, FAILED (with the error as a tag) or KILLED.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

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


def dashboard_command(tracking_uri: str) -> str:
    """The command that opens the MLflow dashboard on this store (bound to localhost)."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000"


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
        text = "null" if value is None else str(value)
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
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

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
) -> Iterator[RunHandle]:
    """Open a run; it ends FINISHED, FAILED (error recorded as the ``lossforge.error`` tag) or KILLED."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = get_or_create_experiment(client, experiment, artifact_location)
    run = client.create_run(experiment_id, tags={k: str(v) for k, v in tags.items()}, run_name=run_name)
    handle = RunHandle(client, run.info.run_id, experiment_id, tracking_uri)
    try:
        yield handle
    except (KeyboardInterrupt, SystemExit) as interruption:
        handle.set_tags({"lossforge.error": f"interrupted ({type(interruption).__name__})"})
        client.set_terminated(handle.run_id, status="KILLED")
        raise
    except BaseException as error:
        handle.set_tags({"lossforge.error": f"{type(error).__name__}: {error}"[:5000]})
        client.set_terminated(handle.run_id, status="FAILED")
        raise
    client.set_terminated(handle.run_id, status="FINISHED")


class EpochMetricsToMlflow(L.Callback):
    """Log every epoch's train/val metrics to MLflow with the epoch as the step."""

    def __init__(self, run: RunHandle) -> None:
        self.run = run

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs validation before this hook, so train/* and val/* of the epoch are both here.
        metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(("train/", "val/")) and value.numel() == 1
        }
        if metrics and trainer.is_global_zero:
            self.run.log_metrics(metrics, step=trainer.current_epoch)
