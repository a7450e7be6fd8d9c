"""Where runs go: the tracking store (SQLite by default, or a server), its artifacts, and its experiments."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from mlflow import MlflowClient

from lossforge.tracking.secrets import redact_uri

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
