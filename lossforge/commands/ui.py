"""``lossforge ui``: the MLflow dashboard on the store lossforge's runs went to, on 127.0.0.1.

The store is found the way training finds it (``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else
``outputs/mlflow.db`` under the current directory); the port is a free one unless ``--port`` says. It
prints the URL of the newest sweep or comparison (else the newest run, else the experiment), then serves
until Ctrl-C. For a tracking server (``http(s)://``) there is nothing to start: it prints the URL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lossforge.tracking.store import resolve_tracking_uri

HOST = "127.0.0.1"  # the dashboard is for this machine: MLflow accepts only local clients by default
#: MLflow 3's UI picks its view (GenAI or model training) from this URL parameter; the experiment's
#: ``mlflow.experimentKind`` tag decides only when one navigates from the experiments list.
TRAINING_VIEW = "?workflowType=machine_learning"


def newest_page(client: Any, experiment_name: str) -> str:
    """The dashboard's address (after ``#``) of the newest sweep or comparison run, else the newest run, else
    the experiment's runs, else the experiments list — in the model-training view."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return f"/experiments{TRAINING_VIEW}"
    parents = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`lossforge.sweep` = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    comparisons = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`lossforge.protocol.stage` = 'comparison'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    runs = sorted([*parents, *comparisons], key=lambda run: run.info.start_time, reverse=True)
    if not runs:
        runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return f"/experiments/{experiment.experiment_id}/runs{TRAINING_VIEW}"
    return f"/experiments/{experiment.experiment_id}/runs/{runs[0].info.run_id}{TRAINING_VIEW}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossforge ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="the store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--port", type=int, help="the port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--experiment", default="lossforge", help="the experiment to open (default: lossforge)")
    args = parser.parse_args(argv)

    from mlflow import MlflowClient

    uri = resolve_tracking_uri(args.tracking_uri, base_dir=Path.cwd())
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        print(
            f"lossforge ui: no MLflow store at {uri} yet; train something first (python -m lossforge)", file=sys.stderr
        )
        return 1
    page = newest_page(MlflowClient(uri), args.experiment)
    if uri.startswith(("http://", "https://")):
        print(f"{uri.rstrip('/')}/#{page}")
        return 0
    if args.port is None:
        from lossforge.distributed.launch import free_port

        args.port = free_port(HOST)
    print(f"MLflow dashboard for {uri}: http://{HOST}:{args.port}/#{page}   (Ctrl-C stops it)", flush=True)
    server = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", HOST, "--workers", "1"]
    # MLflow's GenAI job runner starts worker processes the dashboard of training runs never needs.
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    try:
        return subprocess.call([*server, "--port", str(args.port)], env=environment)
    except KeyboardInterrupt:
        return 0
