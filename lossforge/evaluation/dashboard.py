"""What a comparison leaves on the dashboard: the parent run's tables, figure and per-group metrics.

[log_comparison][lossforge.evaluation.dashboard.log_comparison] writes a
[lossforge.evaluation.compare.ComparisonReport][]'s renderings onto the sweep's (or comparison's) parent MLflow run;
[verdict_figure][lossforge.evaluation.dashboard.verdict_figure] draws its verdict rows and
[group_metrics][lossforge.evaluation.dashboard.group_metrics] names each group's mean and interval as a metric.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lossforge.evaluation.statistics import VerdictRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ARROWS = {"higher": "↑", "lower": "↓"}
ARTIFACTS = {  # artifact path on the parent run → what it holds
    "comparison/table.md": "the tables below, as markdown",
    "comparison/table.csv": "one row per group and metric: n, mean, std, CI, difference, p, verdict",
    "comparison/table.json": "the same rows as JSON, with each seed's value",
    "comparison/plot.png": "each seed as a dot, the mean with its 95 % CI",
}


def verdict_figure(tables: Mapping[str, Sequence[VerdictRow]]) -> Figure:
    """A panel per metric: each seed as a dot, each group's mean with its 95 % CI as an error bar, the
    baseline in black with its mean as a dashed line, and every verdict under its group's name."""
    from matplotlib.figure import Figure

    metrics = list(tables)
    widest = max((len(rows) for rows in tables.values()), default=1)
    figure = Figure(figsize=(max(3.2, 0.9 + 0.75 * widest) * len(metrics), 4.2))
    panels = figure.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    for axes, metric in zip(panels, metrics, strict=False):
        rows = tables[metric]
        baseline = next((row.baseline for row in rows if row.baseline), None)
        for index, row in enumerate(rows):
            colour = "black" if row.group == baseline else f"C{index % 10}"
            seeds = list(row.values.values())
            spread = [index - 0.15 + 0.3 * i / max(len(seeds) - 1, 1) for i in range(len(seeds))]
            axes.scatter(spread if len(seeds) > 1 else [index], seeds, s=14, color=colour, alpha=0.45, linewidths=0)
            if row.ci_low is not None and row.ci_high is not None:
                error = [[row.mean - row.ci_low], [row.ci_high - row.mean]]
                axes.errorbar([index], [row.mean], yerr=error, fmt="D", color=colour, capsize=5, markersize=6)
            else:
                axes.plot([index], [row.mean], "D", color=colour, markersize=6)
            if row.group == baseline:
                axes.axhline(row.mean, color="black", linestyle="--", linewidth=0.8)
        labels = [_figure_label(row, baseline) for row in rows]
        axes.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=7)
        axes.set_xlim(-0.6, len(rows) - 0.4)
        axes.set_title(f"{metric} {ARROWS[rows[0].direction]}", fontsize=9)
        axes.tick_params(axis="y", labelsize=7)
    figure.suptitle("dots: seeds · ◆: mean with 95 % CI · dashed: baseline", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    return figure


def _figure_label(row: VerdictRow, baseline: str | None) -> str:
    if row.group == baseline:
        return f"{row.group}\n(baseline)"
    if row.verdict is None:
        return row.group
    short = "too few runs" if row.verdict.startswith("too few") else row.verdict
    return f"{row.group}\n{short}"


def group_metrics(tables: Mapping[str, Sequence[VerdictRow]]) -> dict[str, float]:
    """`<group>/<metric>/mean` (and `ci_low`, `ci_high`) for the parent run; MLflow-safe names.

    ```pycon
    >>> from lossforge.evaluation.statistics import verdict_table
    >>> group_metrics({"test/mae": verdict_table({"huber (loss.delta=2)": {0: 0.5}}, metric="test/mae")})
    {'huber_loss.delta_2/test/mae/mean': 0.5}

    ```
    """
    logged = {}
    for metric, rows in tables.items():
        for row in rows:
            name = mlflow_name(row.group)
            for suffix, value in (("mean", row.mean), ("ci_low", row.ci_low), ("ci_high", row.ci_high)):
                if value is not None:
                    logged[f"{name}/{metric}/{suffix}"] = value
    return logged


def mlflow_name(label: str) -> str:
    """`label` with what MLflow refuses in a metric name (and `/`, its nesting) replaced by `_`.

    ```pycon
    >>> mlflow_name("focal (loss.gamma=2.0)"), mlflow_name("triplet+semihard_triplets")
    ('focal_loss.gamma_2.0', 'triplet_semihard_triplets')

    ```
    """
    return re.sub(r"\s*[^\w.\- ]+\s*", "_", label).strip(" ._") or "group"


def log_comparison(
    client: Any,
    run_id: str,
    *,
    summary: str,
    markdown: str,
    csv: str,
    json: str,
    tables: Mapping[str, Sequence[VerdictRow]],
    figure: Figure | None,
) -> None:
    """Tables, plot and `<group>/<metric>/mean|ci_low|ci_high` metrics onto the sweep's parent run."""
    import time

    from mlflow.entities import Metric

    client.log_text(run_id, f"# Comparison: {summary}\n\n{markdown}", "comparison/table.md")
    client.log_text(run_id, csv, "comparison/table.csv")
    client.log_text(run_id, json + "\n", "comparison/table.json")
    if figure is not None:
        client.log_figure(run_id, figure, "comparison/plot.png")
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in group_metrics(tables).items()]
    for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
