"""Where runs go: the tracking store (SQLite by default, or a server), its artifacts, and its experiments."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import sqlite3
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from lossforge.tracking.secrets import redact_uri
from lossforge.tracking.ui import TRAINING_VIEW, run_page

DEFAULT_STORE = "outputs/mlflow.db"
DEFAULT_ARTIFACTS = "outputs/mlartifacts"


def resolve_tracking_uri(configured: str | None, *, base_dir: Path) -> str:
    """The tracking URI: the config's, else `MLFLOW_TRACKING_URI`, else SQLite under `base_dir`."""
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


def dashboard_command(tracking_uri: str, *, run_id: str | None = None, experiment_id: str | None = None) -> str:
    """The command that opens the MLflow dashboard on this store: `lossforge ui` (127.0.0.1, a free port),
    spelled with this Python so that it works from a shell whose venv is not activated; for a tracking
    server, its URL. With `run_id` it opens that run's page (a server's URL needs `experiment_id` too), and
    a server's URL is always in the model-training view (`lossforge.tracking.ui.TRAINING_VIEW`). Credentials
    in the URI are never printed: they belong in the environment (`MLFLOW_TRACKING_USERNAME` /
    `MLFLOW_TRACKING_PASSWORD`).

    Examples:
        >>> dashboard_command("http://mlflow.internal:5000")
        'open http://mlflow.internal:5000/#/experiments?workflowType=machine_learning'
        >>> dashboard_command("https://alice:s3cret@mlflow.internal/", run_id="abc", experiment_id="7")
        'open https://***@mlflow.internal/#/experiments/7/runs/abc?workflowType=machine_learning'
        >>> dashboard_command("sqlite:///x.db", run_id="abc").split(" -m ")[1]
        'lossforge ui --tracking-uri sqlite:///x.db --run abc'
    """
    shown = redact_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        page = run_page(experiment_id, run_id) if run_id and experiment_id else f"/experiments{TRAINING_VIEW}"
        return f"open {shown.rstrip('/')}/#{page}"
    run = f" --run {shlex.quote(run_id)}" if run_id else ""
    return f"{shlex.quote(sys.executable)} -m lossforge ui --tracking-uri {shlex.quote(shown)}{run}"


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""The experiment tag MLflow 3's UI reads to choose its view; without it the UI may open the GenAI view and file
runs under "Evaluations". MLflow has no Python constant for it: the name and values are its UI's."""
MODEL_TRAINING = "custom_model_development"


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of experiment `name`, created if needed (tolerates a parallel job creating it first), marked as
    a model-training experiment for the MLflow UI unless it already says what kind it is.

    The first request to the store: on a tracking server it gets lossforge's HTTP limits
    ([limit_http_retries][lossforge.tracking.store.limit_http_retries]), and refused credentials raise
    [TrackingCredentialsError][lossforge.tracking.store.TrackingCredentialsError].
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


HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",  # seconds per attempt
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
"""How hard MLflow's HTTP client tries one request to a tracking server before the run fails, where the user
set nothing else. MLflow's own defaults (7 retries with backoff factor 2, 120 s per attempt) keep a job
waiting about 4 minutes per request for a server that went away — and a failing run makes two more
requests to record its failure. With these, a stopped server (connection refused) fails a request in
about 10 s (attempts after waits of 0, 2 and 4 s, plus up to 1 s of jitter each), a silent one in at
most 4 × 20 s + 9 s ≈ 90 s. The same variables, set in the environment, override them."""


def limit_http_retries(environment: MutableMapping[str, str] | None = None) -> None:
    """Give MLflow's HTTP client [HTTP_LIMITS][lossforge.tracking.store.HTTP_LIMITS] wherever `environment` (this
    process's) sets none.

    MLflow reads these limits from the environment only, at each request; no client argument carries them.

    ```pycon
    >>> environment = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    >>> limit_http_retries(environment)
    >>> environment["MLFLOW_HTTP_REQUEST_TIMEOUT"], environment["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    ('60', '3')

    ```
    """
    environment = os.environ if environment is None else environment
    for name, value in HTTP_LIMITS.items():
        environment.setdefault(name, value)


def _is_http(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def _refusal(error: MlflowException, tracking_uri: str, action: str) -> TrackingCredentialsError | None:
    """A clear error for a server that refused the credentials (401) or the access (403); None for any other
    failure. Names the user (`MLFLOW_TRACKING_USERNAME`), never a password or token."""
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
    """Fail fast, naming the URI, when the tracking server does not answer within `timeout` seconds, or
    refuses the credentials in `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` — or, for a SQLite
    store, when its file is damaged ([open_sqlite_store][lossforge.tracking.store.open_sqlite_store], which also creates
    a new one under a lock).

    Any HTTP answer to `/health` means a server is there; then one authenticated request (listing one
    experiment) checks the credentials. Also gives this process's later requests to that server
    lossforge's limits ([HTTP_LIMITS][lossforge.tracking.store.HTTP_LIMITS]), so a server that goes away fails the run
    within them.
    """
    import urllib.error
    import urllib.request

    if not _is_http(tracking_uri):
        open_sqlite_store(tracking_uri)
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


class StoreDamagedError(TrackingUnavailableError):
    """The SQLite store's file cannot be used: not a database, truncated, or its schema half-migrated."""


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite 3 database file (https://www.sqlite.org/fileformat.html, 1.3)."""
_checked_stores: set[Path] = set()
"""SQLite stores lossforge has checked (or created) in this process: each file is checked once per command."""


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI; `None` for any other store (or an in-memory one).

    ```pycon
    >>> sqlite_path("sqlite:////tmp/outputs/mlflow.db"), sqlite_path("http://host:5000"), sqlite_path("sqlite://")
    (PosixPath('/tmp/outputs/mlflow.db'), None, None)

    ```
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def lock_path(database: Path) -> Path:
    """The lock file beside a SQLite store, `<name>.lock`: held while the store is created or checked.

    ```pycon
    >>> lock_path(Path("outputs/mlflow.db"))
    PosixPath('outputs/mlflow.db.lock')

    ```
    """
    return database.with_name(f"{database.name}.lock")


@contextlib.contextmanager
def store_lock(database: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on [lock_path][lossforge.tracking.store.lock_path] of `database`, waiting for another
    command that holds it. The lock file stays: removing it would let a third command lock a new file while the second
    waits on the old one. The lock ends with the process, however it ends (the kernel releases it)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(database), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class StoreState:
    """What [store_state][lossforge.tracking.store.store_state] found in a SQLite store's file."""

    new: bool = False  # no MLflow table yet: missing, empty, or a creation that failed before its first table
    problem: str | None = None  # why it cannot be used, as a phrase after the file's name; None: ready
    upgradable: bool = False  # at a known older schema version: ``mlflow db upgrade`` may repair it


def open_sqlite_store(tracking_uri: str) -> None:
    """Make a SQLite store ready for this command: create it and apply MLflow's schema migrations if it is new,
    or check it if it exists — both under [store_lock][lossforge.tracking.store.store_lock], so that commands started
    together on a new store never migrate it at the same time (MLflow's own creation takes no lock: two commands both
    create its tables, and one fails, or leaves it half-migrated). Raises
    [StoreDamagedError][lossforge.tracking.store.StoreDamagedError], a paragraph that names the file and how to repair
    it, when the file is not a SQLite database, is truncated, or has a schema other than this MLflow's. Any other store
    (a tracking server, PostgreSQL): nothing. Each file is checked once per process."""
    database = sqlite_path(tracking_uri)
    if database is None or database.resolve() in _checked_stores:
        return
    with store_lock(database):
        state = store_state(database)
        if state.new:
            from mlflow import MlflowClient

            try:
                MlflowClient(tracking_uri).search_experiments(max_results=1)  # creates the tables, migrates them
            except Exception as error:  # e.g. a read-only directory, or a full disk
                state = StoreState(problem=f"could not be created ({' '.join(str(error).split())[:300]})")
            else:
                state = store_state(database)
        if state.problem is not None:
            raise StoreDamagedError(repair_advice(database, state))
    _checked_stores.add(database.resolve())


def store_state(database: Path) -> StoreState:
    """What the SQLite store `database` is: new, damaged (and how), or ready (its schema is MLflow's current
    one). Reads the file only, in SQLite's read-only mode: no migration, no repair."""
    if not database.is_file() or database.stat().st_size == 0:
        return StoreState(new=True)
    with open(database, "rb") as handle:
        header = handle.read(100)
    if not header.startswith(SQLITE_HEADER):
        return StoreState(problem="is not a SQLite database (its first bytes are not SQLite's header)")
    truncated = _truncated(header, database.stat().st_size)
    if truncated:
        return StoreState(problem=truncated)
    try:
        with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
    except sqlite3.DatabaseError as error:
        return StoreState(problem=f"cannot be read as a SQLite database ({error})")
    if not tables - {"alembic_version"}:
        return StoreState(new=True)
    return _schema_state(revision)


def _truncated(header: bytes, size: int) -> str | None:
    """Why a file whose header declares more pages than it holds is truncated; `None` if it is whole. The
    page count at offset 28 is valid only while the change counters at offsets 24 and 92 agree (SQLite's file
    format, 1.3.7); older writers leave it stale, and then nothing is concluded."""
    if len(header) < 100:
        return f"is truncated ({size} bytes, shorter than SQLite's 100-byte header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] != header[92:96] or pages == 0:
        return None
    if size < pages * page_size:
        return f"is truncated ({size} bytes; its header declares {pages} pages of {page_size} bytes)"
    return None


def _schema_state(revision: str | None) -> StoreState:
    """A store at alembic `revision`: ready when that is this MLflow's head, else why not."""
    import mlflow
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config  # MLflow's own migration scripts; no public name

    scripts = ScriptDirectory.from_config(_get_alembic_config(db_url=""))
    head = scripts.get_current_head()
    if revision == head:
        return StoreState()
    if revision is None:
        return StoreState(problem="is half-created: it has tables but no schema version (its creation was interrupted)")
    try:
        scripts.get_revision(revision)
    except Exception:
        return StoreState(
            problem=f"has schema version {revision}, unknown to MLflow {mlflow.__version__}: a newer MLflow made "
            f"it (upgrade MLflow to use it)"
        )
    return StoreState(
        problem=f"has schema version {revision}, not MLflow {mlflow.__version__}'s {head}: an older MLflow made "
        f"it, or a migration was interrupted",
        upgradable=True,
    )


def repair_advice(database: Path, state: StoreState) -> str:
    """One paragraph: the store, what is wrong with it, and the ways on (no traceback).

    ```pycon
    >>> print(repair_advice(Path("/w/outputs/mlflow.db"), StoreState(problem="is not a SQLite database")))
    ... # doctest: +NORMALIZE_WHITESPACE
    The MLflow store /w/outputs/mlflow.db is not a SQLite database. Nothing was run or recorded. Back it up
    (cp /w/outputs/mlflow.db /w/outputs/mlflow.db.bak), then move it aside or restore an intact copy, or point
    the command at another store: logger.tracking_uri=sqlite:///<file> for a run or a sweep, --tracking-uri
    <uri> for lossforge compare and lossforge ui (MLFLOW_TRACKING_URI=<uri> for all of them).

    ```
    """
    quoted = shlex.quote(str(database))
    repair = "move it aside or restore an intact copy"
    if state.upgradable:
        repair = f"migrate it with `mlflow db upgrade sqlite:///{database}`, or move it aside"
    return (
        f"The MLflow store {database} {state.problem}. Nothing was run or recorded. Back it up "
        f"(cp {quoted} {quoted}.bak), then {repair}, or point the command at another store: "
        f"logger.tracking_uri=sqlite:///<file> for a run or a sweep, --tracking-uri <uri> for lossforge compare "
        f"and lossforge ui (MLFLOW_TRACKING_URI=<uri> for all of them)."
    )
