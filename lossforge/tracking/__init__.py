"""MLflow tracking: where runs go, what each run records, and how it ends.

Default store: SQLite at `outputs/mlflow.db` with artifacts in `outputs/mlartifacts` (current MLflow
refuses the plain-file store). `logger.tracking_uri=...` in the config, else `MLFLOW_TRACKING_URI`,
points runs at a server instead. Each run records the flattened resolved config as params (a value too
long for MLflow is replaced by a pointer to `config.yaml` and listed in the `lossforge.long_params`
tag — nothing is dropped silently), per-epoch metrics with the epoch's number (from 1) as step, test
metrics, the resolved config as `config.yaml`, and ends FINISHED, FAILED (with the error as a tag) or
KILLED. A multirun is one parent run with each job as its child.

- `store`: the tracking URI, artifact location, experiments, and failing fast when a server is down.
- `runs`: one run — params, metrics, tags, artifacts, and its final status.
- `sweep_record`: the file naming a multirun's parent run, and each job's place in it (`SweepJob`).
  What a sweep *does* (its parent run's life, failures, resume) is `lossforge.sweeps`.
- `secrets`: credentials kept out of everything recorded.
- `artifacts`: a finished run's config, plots and Hydra record.
- `callback`: the Lightning callback that logs every epoch's metrics.

Importing this package does not import Lightning or torch (seconds of start-up): `lossforge compare` and
the sweep callback (`lossforge.sweeps`) in the launcher process need neither. So `callback`, which
imports Lightning, is imported by its own name and not re-exported here.
"""

from lossforge.tracking.runs import (
    RunHandle,
    flatten,
    git_commit,
    mlflow_run,
    params_for_mlflow,
    run_context_tags,
)
from lossforge.tracking.secrets import redact_uri, run_name_for, scrub_secrets
from lossforge.tracking.store import (
    DEFAULT_ARTIFACTS,
    DEFAULT_STORE,
    TrackingUnavailableError,
    check_reachable,
    dashboard_command,
    default_artifact_location,
    get_or_create_experiment,
    resolve_tracking_uri,
)
from lossforge.tracking.sweep_record import SWEEP_RECORD, SweepJob, sweep_job

__all__ = [
    "DEFAULT_ARTIFACTS",
    "DEFAULT_STORE",
    "SWEEP_RECORD",
    "RunHandle",
    "SweepJob",
    "TrackingUnavailableError",
    "check_reachable",
    "dashboard_command",
    "default_artifact_location",
    "flatten",
    "get_or_create_experiment",
    "git_commit",
    "mlflow_run",
    "params_for_mlflow",
    "redact_uri",
    "resolve_tracking_uri",
    "run_context_tags",
    "run_name_for",
    "scrub_secrets",
    "sweep_job",
]
