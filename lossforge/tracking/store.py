"""Where runs go: the tracking store (SQLite by default, or a server), its artifacts, and its experiments."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

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
    """The command that opens the MLflow dashboard on this store: ``lossforge ui`` (127.0.0.1, a free port),
    spelled with this Python so that it works from a shell whose venv is not activated; for a tracking
    server, its URL.

    >>> dashboard_command("http://mlflow.internal:5000")
    'open http://mlflow.internal:5000'
    """
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"{shlex.quote(sys.executable)} -m lossforge ui --tracking-uri {shlex.quote(tracking_uri)}"


#: The experiment tag MLflow 3's UI reads to choose its view; without it the UI may open the GenAI view and file
#: runs under "Evaluations". MLflow has no Python constant for it: the name and values are its UI's.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created if needed (tolerates a parallel job creating it first), marked as
    a model-training experiment for the MLflow UI unless it already says what kind it is."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(
                name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}
            )
        except Exception:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if EXPERIMENT_KIND_TAG not in experiment.tags:  # made by an older lossforge, or by someone else
        try:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        except MlflowException:  # a server that lets us log runs but not edit the experiment: only the view suffers
            pass
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
