"""Addresses on the MLflow dashboard: which page a link opens, in MLflow 3's model-training view.

MLflow 3's UI picks its view (GenAI or model training) from the URL parameter `workflowType`; an experiment's
`mlflow.experimentKind` tag decides only when one navigates from the experiments list. A link without the
parameter can open the GenAI overview, which lists no training runs — so every address lossforge prints or
opens ends in [TRAINING_VIEW][lossforge.tracking.ui.TRAINING_VIEW].
"""

from __future__ import annotations

from typing import Any

TRAINING_VIEW = "?workflowType=machine_learning"


def run_page(experiment_id: str, run_id: str) -> str:
    """The dashboard's address (after `#`) of one run's page, which opens on its description.

    Examples:
        >>> run_page("1", "abc")
        '/experiments/1/runs/abc?workflowType=machine_learning'
    """
    return f"/experiments/{experiment_id}/runs/{run_id}{TRAINING_VIEW}"


def newest_page(client: Any, experiment_name: str) -> str:
    """The dashboard's address (after `#`) of the newest sweep or comparison run, else the newest run, else
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
    return run_page(experiment.experiment_id, runs[0].info.run_id)
