"""Where runs go: the tracking store (SQLite by default, or a server), its artifacts, and its experiments."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import MutableMapping
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
    a model-training experiment for the MLflow UI unless it already says what kind it is.

    The first request to the store: on a tracking server it gets lossforge's HTTP limits
    (:func:`limit_http_retries`), and refused credentials raise :class:`TrackingCredentialsError`.
    """
    if _is_http(client.tracking_uri):
        limit_http_retries()
    try:
        experiment = client.get_experiment_by_name(name)
    except MlflowException as error:
        refusal = _refusal(error, client.tracking_uri, f"reading experiment {name!r}")
        if refusal is not None:
            raise refusal from None
        raise
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


class TrackingCredentialsError(TrackingUnavailableError):
    """The tracking server answers but refuses the credentials (HTTP 401) or the access (HTTP 403)."""


#: How hard MLflow's HTTP client tries one request to a tracking server before the run fails, where the user
#: set nothing else. MLflow's own defaults (7 retries with backoff factor 2, 120 s per attempt) keep a job
#: waiting about 4 minutes per request for a server that went away — and a failing run makes two more
#: requests to record its failure. With these, a stopped server (connection refused) fails a request in
#: about 10 s (attempts after waits of 0, 2 and 4 s, plus up to 1 s of jitter each), a silent one in at
#: most 4 × 20 s + 9 s ≈ 90 s. The same variables, set in the environment, override them.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",  # seconds per attempt
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def limit_http_retries(environment: MutableMapping[str, str] | None = None) -> None:
    """Give MLflow's HTTP client :data:`HTTP_LIMITS` wherever ``environment`` (this process's) sets none.

    MLflow reads these limits from the environment only, at each request; no client argument carries them.

    >>> environment = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    >>> limit_http_retries(environment)
    >>> environment["MLFLOW_HTTP_REQUEST_TIMEOUT"], environment["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    ('60', '3')
    """
    environment = os.environ if environment is None else environment
    for name, value in HTTP_LIMITS.items():
        environment.setdefault(name, value)


def _is_http(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def _refusal(error: MlflowException, tracking_uri: str, action: str) -> TrackingCredentialsError | None:
    """A clear error for a server that refused the credentials (401) or the access (403); None for any other
    failure. Names the user (``MLFLOW_TRACKING_USERNAME``), never a password or token."""
    status = error.get_http_status_code()
    if status not in (401, 403):
        return None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    who = f"user {user!r}" if user else "no user (MLFLOW_TRACKING_USERNAME is not set)"
    server = f"The MLflow tracking server at {redact_uri(tracking_uri)}"
    if status == 401:
        message = (
            f"{server} refused the credentials of {who} (HTTP 401) when {action}. Set MLFLOW_TRACKING_USERNAME "
            f"and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account on that server."
        )
    else:
        message = (
            f"{server} accepted {who} but refused the access (HTTP 403) when {action}. Ask its admin for "
            f"EDIT permission on the experiment (logger.experiment), or log to another experiment."
        )
    return TrackingCredentialsError(f"{message} Nothing was trained.")


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, when the tracking server does not answer within ``timeout`` seconds, or
    refuses the credentials in ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.

    Any HTTP answer to ``/health`` means a server is there; then one authenticated request (listing one
    experiment) checks the credentials. Also gives this process's later requests to that server
    lossforge's limits (:data:`HTTP_LIMITS`), so a server that goes away fails the run within them.
    """
    import urllib.error
    import urllib.request

    if not _is_http(tracking_uri):
        return
    limit_http_retries()
    try:
        urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnavailableError(
            f"The MLflow tracking server at {redact_uri(tracking_uri)} did not answer within {timeout:.0f} s "
            f"({reason}). Start it, fix MLFLOW_TRACKING_URI / logger.tracking_uri, or unset both to log to "
            f"the local SQLite store (outputs/mlflow.db). Nothing was trained."
        ) from None
    try:
        MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
    except MlflowException as error:
        refusal = _refusal(error, tracking_uri, "listing experiments")
        if refusal is not None:
            raise refusal from None
        # any other answer (an old server without this endpoint, say) is left to the run's own requests
