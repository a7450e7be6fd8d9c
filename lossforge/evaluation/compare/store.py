"""A sweep's runs read back from the MLflow store: the store opened (never created), the sweep's parent run
found, and its child runs — or, for a `lossforge benchmark` comparison, its studies' runs — read as rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lossforge.evaluation.compare.groups import Row, row_of
from lossforge.evaluation.compare.verdicts import ComparisonError
from lossforge.tracking import check_reachable, redact_uri
from lossforge.tracking.runs import ERROR_TAG
from lossforge.tracking.store import DEFAULT_STORE, sqlite_path

PROTOCOL_STAGE = "lossforge.protocol.stage"
"""The tag `lossforge benchmark` puts on its runs: `comparison` (the parent), `study`, `final`."""


def open_store(tracking_uri: str | None, base_dir: Path | None) -> Any:
    """An `MlflowClient` on the store a comparison reads; creates nothing (training creates stores).

    Raises:
        ComparisonError: no store where it looked; the message says where, and how to point elsewhere.
    """
    from mlflow import MlflowClient

    configured = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    where = "--tracking-uri" if tracking_uri else "MLFLOW_TRACKING_URI" if configured else "the default store"
    store = configured or f"sqlite:///{((base_dir or Path.cwd()) / DEFAULT_STORE).resolve()}"
    database = sqlite_path(store)
    if database is not None and not database.exists():
        raise ComparisonError(
            f"no MLflow store at {database} (looked there: {where}). Run an experiment first, or point at a "
            f"store with --tracking-uri <uri> (or MLFLOW_TRACKING_URI)."
        )
    check_reachable(store)  # a damaged store: one paragraph naming it (lossforge.tracking.store)
    return MlflowClient(store)


def read_runs(client: Any, parent: Any) -> tuple[list[Row], list[dict[str, Any]], bool]:
    """The runs a sweep (or a `lossforge benchmark` comparison, through its studies) compares, the
    comparison's entries whose every tuning trial failed, and whether it is a comparison. Superseded runs
    (replaced by a resume, moved to the deleted runs) are not read."""
    experiment_id = parent.info.experiment_id
    children = _children(client, experiment_id, parent.info.run_id)
    failed: list[dict[str, Any]] = []
    protocol = parent.data.tags.get(PROTOCOL_STAGE) == "comparison"
    if protocol:  # lossforge benchmark: the studies' seed runs
        failed = [
            {
                "group": study.data.tags.get("entry", study.info.run_name),
                "metric": parent.data.tags.get("lossforge.protocol.metric"),
                "n": 0,
                "verdict": "failed",
                "error": study.data.tags.get(ERROR_TAG, ""),
            }
            for study in children
            if study.info.status == "FAILED"
        ]
        children = [run for study in children for run in _children(client, experiment_id, study.info.run_id)]
    rows = [row_of(child) for child in children]
    return [row for row in rows if row.outcome != "superseded"], failed, protocol


def find_sweep(client: Any, experiment_id: str, sweep: str | None) -> Any:
    """The parent run `sweep` (a run id), or the most recent sweep of the experiment."""
    if sweep:
        from mlflow.exceptions import MlflowException

        try:
            return client.get_run(sweep)
        except MlflowException:
            raise ComparisonError(
                f"no run {sweep!r} in {redact_uri(client.tracking_uri)}. A sweep's parent run id is printed at its "
                f"end; `lossforge compare` without an id takes the latest sweep, and `--tracking-uri` points at "
                f"another store."
            ) from None
    parents = client.search_runs(
        [experiment_id],
        filter_string="tags.`lossforge.sweep` = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not parents:
        raise ComparisonError(
            "no sweep found in this experiment. Run one first, e.g. "
            "`python -m lossforge -m loss=l1,l2,huber dataset=regression_outliers`."
        )
    return parents[0]


def _children(client: Any, experiment_id: str, run_id: str) -> list[Any]:
    return list(
        client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
            order_by=["attributes.start_time ASC"],
        )
    )
