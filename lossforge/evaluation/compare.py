"""``lossforge compare``: read a sweep's runs back from MLflow, print a table, plot it, log both.

A sweep is one parent MLflow run with a child run per job (see ``tracking.MlflowSweepCallback``). The
table has one row per child: its name, loss (and miner), the parameters that differ between the runs,
and its test metrics. The same table (markdown and CSV) and a bar chart are logged to the parent run,
so the comparison sits next to the runs in the dashboard.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossforge.tracking import resolve_tracking_uri


@dataclass(frozen=True)
class Row:
    """One run of the sweep, as the table shows it."""

    run_name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    spread: dict[str, float] = field(default_factory=dict)  # standard deviation, for merged rows


def varying_params(rows: Sequence[Row], ignore: Sequence[str] = ("hydra", "run_name")) -> list[str]:
    """Parameter keys whose values differ between rows — the ones that explain the differences.

    >>> rows = [Row("a", "FINISHED", {"loss.name": "l1", "seed": "0"}, {}),
    ...         Row("b", "FINISHED", {"loss.name": "l2", "seed": "0"}, {})]
    >>> varying_params(rows)
    ['loss.name']
    """
    keys = sorted({key for row in rows for key in row.params})
    return [key for key in keys if not key.startswith(tuple(ignore)) and len({row.params.get(key) for row in rows}) > 1]


def headline_metrics(rows: Sequence[Row], prefix: str = "test/") -> list[str]:
    """Metrics every finished row has under ``prefix`` (per-class breakdowns, with a second ``/``, left out)."""
    finished = [row for row in rows if row.metrics]
    if not finished:
        return []
    common = set.intersection(*(set(row.metrics) for row in finished))
    return sorted(key for key in common if key.startswith(prefix) and key.count("/") == 1)


def mean_over(rows: Sequence[Row], key: str) -> list[Row]:
    """Merge rows that differ only in param ``key`` (e.g. ``seed``): metrics become ``mean ± std``.

    >>> rows = [Row("l1-0", "FINISHED", {"loss.name": "l1", "seed": "0"}, {"test/mae": 1.0}),
    ...         Row("l1-1", "FINISHED", {"loss.name": "l1", "seed": "1"}, {"test/mae": 3.0})]
    >>> row = mean_over(rows, "seed")[0]
    >>> row.run_name, row.params["seed"], row.metrics["test/mae"], round(row.spread["test/mae"], 3)
    ('l1 (2 runs)', '0,1', 2.0, 1.414)
    """
    groups: dict[tuple[tuple[str, str], ...], list[Row]] = {}
    for row in rows:
        identity = tuple(sorted((k, v) for k, v in row.params.items() if k != key and not k.startswith("hydra")))
        groups.setdefault(identity, []).append(row)
    merged = []
    for members in groups.values():
        metrics, spread = {}, {}
        for metric in set.intersection(*(set(member.metrics) for member in members)):
            values = [member.metrics[metric] for member in members]
            mean = sum(values) / len(values)
            metrics[metric] = mean
            spread[metric] = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
        name = members[0].params.get("loss.name", members[0].run_name)
        if members[0].params.get("miner.name") not in (None, "null"):
            name += f"+{members[0].params['miner.name']}"
        statuses = {member.status for member in members}
        merged.append(
            Row(
                f"{name} ({len(members)} runs)",
                statuses.pop() if len(statuses) == 1 else "MIXED",
                {**members[0].params, key: ",".join(member.params.get(key, "") for member in members)},
                metrics,
                spread,
            )
        )
    return merged


def format_table(rows: Sequence[Row], params: Sequence[str], metrics: Sequence[str]) -> str:
    """A markdown table: run, status, the given params, the given metrics (4 decimals).

    >>> print(format_table([Row("a", "FINISHED", {"loss.name": "l1"}, {"test/mae": 0.5})], ["loss.name"], ["test/mae"]))
    | run | status | loss.name | test/mae |
    |---|---|---|---|
    | a | FINISHED | l1 | 0.5000 |
    """
    header = ["run", "status", *params, *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.run_name, row.status, *(row.params.get(p, "") for p in params)]
        cells += [_number(row, m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(row: Row, metric: str) -> str:
    if metric not in row.metrics:
        return "—"
    if metric in row.spread:
        return f"{row.metrics[metric]:.4f} ± {row.spread[metric]:.4f}"
    return f"{row.metrics[metric]:.4f}"


def to_csv(rows: Sequence[Row], params: Sequence[str], metrics: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "status", *params, *metrics])
    for row in rows:
        writer.writerow(
            [
                row.run_name,
                row.status,
                *(row.params.get(p, "") for p in params),
                *(row.metrics.get(m, "") for m in metrics),
            ]
        )
    return buffer.getvalue()


def comparison_figure(rows: Sequence[Row], metrics: Sequence[str]) -> Any:
    """One bar chart panel per metric, one bar per run."""
    from lossforge.evaluation.plots import plt

    figure, panels = plt.subplots(
        1, len(metrics), figsize=(max(4, 1 + 0.6 * len(rows)) * len(metrics) / 1.5, 3.6), squeeze=False
    )
    names = [row.run_name for row in rows]
    for axes, metric in zip(panels[0], metrics, strict=True):
        values = [row.metrics.get(metric, float("nan")) for row in rows]
        bars = axes.bar(range(len(rows)), values, color=[f"C{i}" for i in range(len(rows))])
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
        axes.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=7)
        axes.set_title(metric)
    figure.tight_layout()
    return figure


def find_sweep(client: Any, experiment_id: str, sweep: str | None) -> Any:
    """The parent run ``sweep`` (a run id), or the most recent sweep of the experiment."""
    if sweep:
        return client.get_run(sweep)
    parents = client.search_runs(
        [experiment_id],
        filter_string="tags.`lossforge.sweep` = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not parents:
        raise SystemExit(
            "lossforge compare: no sweep found in this experiment. Run one first, e.g. "
            "`python -m lossforge -m loss=l1,l2,huber dataset=regression_outliers`."
        )
    return parents[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossforge compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--experiment", default="lossforge", help="MLflow experiment name (default: lossforge)")
    parser.add_argument("--sweep", help="parent run id of the sweep (default: the latest sweep)")
    parser.add_argument("--metrics", help="comma-separated metrics (default: every test/* metric all runs have)")
    parser.add_argument("--mean-over", metavar="PARAM", help="merge runs differing only in PARAM (e.g. seed)")
    parser.add_argument("--output", default="outputs/compare.png", help="where to write the PNG plot")
    parser.add_argument("--no-log", action="store_true", help="do not log the table and plot to the sweep's run")
    args = parser.parse_args(argv)

    from mlflow import MlflowClient

    client = MlflowClient(resolve_tracking_uri(args.tracking_uri, base_dir=Path.cwd()))
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"lossforge compare: no MLflow experiment named {args.experiment!r} in {client.tracking_uri}")
    parent = find_sweep(client, experiment.experiment_id, args.sweep)
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    rows = [Row(c.info.run_name, c.info.status, dict(c.data.params), dict(c.data.metrics)) for c in children]
    if args.mean_over:
        rows = mean_over(rows, args.mean_over)
    params = [key for key in varying_params(rows) if key != args.mean_over]
    metrics = args.metrics.split(",") if args.metrics else headline_metrics(rows)
    table = format_table(rows, params, metrics)
    print(f"Sweep {parent.info.run_id} ({parent.data.params.get('overrides', '')}): {len(rows)} runs\n")
    print(table)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if rows and metrics:
        figure = comparison_figure(rows, metrics)
        figure.savefig(output, dpi=120)
        print(f"\nPlot: {output}")
        if not args.no_log:
            client.log_figure(parent.info.run_id, figure, "comparison/plot.png")
    if not args.no_log:
        client.log_text(parent.info.run_id, table + "\n", "comparison/table.md")
        client.log_text(parent.info.run_id, to_csv(rows, params, metrics), "comparison/table.csv")
        print(f"Logged to the sweep's MLflow run {parent.info.run_id} under comparison/")
    return 0
