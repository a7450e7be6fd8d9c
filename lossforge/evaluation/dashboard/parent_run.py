"""Everything onto the parent run at once ([log_comparison][lossforge.evaluation.dashboard.parent_run.log_comparison]):
the description, the tags, the group metrics, the child runs' tags and the artifacts listed in `ARTIFACTS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lossforge.evaluation.dashboard.run_page import DESCRIPTION_TAG, PLOT, description
from lossforge.evaluation.dashboard.tags import GROUP_TAG, VERDICT_TAG, child_verdicts, group_metrics, verdict_tags
from lossforge.evaluation.statistics.verdicts import VerdictRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure


ARTIFACTS = {  # artifact path on the parent run → what it holds
    "comparison/table.md": "the tables below, as markdown",
    "comparison/table.csv": "one row per group and metric: n, mean, std, CI, difference, p, verdict",
    "comparison/table.json": "the same rows as JSON, with each seed's value",
    "comparison/plot.png": "each seed as a dot, the mean with its 95 % CI",
}

# What log_comparison reads of a `lossforge.evaluation.compare.ComparisonReport`, written as Protocols: compare
# imports this module, so this module must not import compare (not even for type checking: the layers forbid it).


class _Run(Protocol):
    @property
    def run_id(self) -> str: ...


class _Group(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def runs(self) -> Sequence[_Run]: ...


class ComparisonReport(Protocol):
    """What [log_comparison][lossforge.evaluation.dashboard.parent_run.log_comparison] reads of a comparison's
    report."""

    @property
    def run_id(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def tables(self) -> Mapping[str, Sequence[VerdictRow]]: ...
    @property
    def figure(self) -> Figure | None: ...
    @property
    def groups(self) -> Sequence[_Group]: ...
    def to_markdown(self) -> str: ...
    def to_csv(self) -> str: ...
    def to_json(self) -> str: ...


def log_comparison(client: Any, report: ComparisonReport) -> None:
    """Write `report` onto its parent run (and tag its child runs), replacing what an earlier log wrote.

    Args:
        client: an `mlflow.MlflowClient` on the store the report was read from.
        report: the comparison, as [compare][lossforge.evaluation.compare.sweep.compare] returns it.
    """
    import time

    from mlflow.entities import Metric, RunTag

    run_id = report.run_id
    client.log_text(run_id, f"# Comparison: {report.summary}\n\n{report.to_markdown()}", "comparison/table.md")
    client.log_text(run_id, report.to_csv(), "comparison/table.csv")
    client.log_text(run_id, report.to_json() + "\n", "comparison/table.json")
    if report.figure is not None:
        client.log_figure(run_id, report.figure, PLOT)
    parent = client.get_run(run_id)
    tags = verdict_tags(report.tables) if report.tables else {}
    tags[DESCRIPTION_TAG] = description(
        run_id=run_id,
        summary=report.summary,
        tables=report.tables,
        plot=report.figure is not None,
        previous=parent.data.tags.get(DESCRIPTION_TAG, ""),
    )
    for stale in parent.data.tags:  # a metric no longer compared must not keep an old verdict
        if stale.startswith(f"{VERDICT_TAG}.") and stale not in tags:
            client.delete_tag(run_id, stale)
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in group_metrics(report.tables).items()]
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])
    for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    verdicts = child_verdicts(report.tables)
    for group in report.groups:
        group_tags = [RunTag(GROUP_TAG, group.label)]
        if group.label in verdicts:
            group_tags.append(RunTag(VERDICT_TAG, verdicts[group.label]))
        for run in group.runs:
            if run.run_id:
                client.log_batch(run.run_id, tags=group_tags)
