"""``lossforge compare``: a sweep's runs read back from MLflow, with a verdict on every difference.

A sweep is one parent MLflow run with a child run per job (see ``tracking.MlflowSweepCallback``). Runs that
differ only in ``--mean-over`` (usually ``seed``) form a group; every other group is compared to a baseline
group (``cross_entropy`` where the sweep has it) on every comparable test metric, with the statistics of
:mod:`lossforge.evaluation.statistics`: mean, sample standard deviation, 95 % confidence intervals, a
permutation test paired by seed, Holm's correction, and a verdict. The tables (markdown, CSV, JSON), a
plot of every seed, and each group's mean and interval as metrics are logged to the parent run, so the
dashboard's run list shows which loss won; ``lossforge compare RUN_ID`` rebuilds them from the store.

Everything but :func:`main` and :func:`find_sweep` works on plain numbers — :func:`verdicts_to_markdown`,
:func:`verdicts_to_csv`, :func:`verdicts_to_json` and :func:`verdict_figure` render the rows of
:func:`lossforge.evaluation.statistics.verdict_table` wherever they come from.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lossforge.contract import did_you_mean
from lossforge.evaluation.statistics import (
    ALPHA,
    CONFIDENCE,
    NOT_COMPARABLE,
    PERMUTATIONS,
    Direction,
    NotComparableError,
    VerdictRow,
    metric_base_name,
    metric_direction,
    verdict_table,
)
from lossforge.tracking import check_reachable, resolve_tracking_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_BASELINE = "cross_entropy"
#: The tag ``lossforge benchmark`` puts on its runs: ``comparison`` (the parent), ``study``, ``final``.
PROTOCOL_STAGE = "lossforge.protocol.stage"
ARROWS = {"higher": "↑", "lower": "↓"}
LEGEND = (
    "± is the sample standard deviation over a group's runs; [low, high] is the 95 % confidence interval "
    "(Student t). ↑: higher is better, ↓: lower is better."
)
ARTIFACTS = {  # artifact path on the parent run → what it holds
    "comparison/table.md": "the tables below, as markdown",
    "comparison/table.csv": "one row per group and metric: n, mean, std, CI, difference, p, verdict",
    "comparison/table.json": "the same rows as JSON, with each seed's value",
    "comparison/plot.png": "each seed as a dot, the mean with its 95 % CI",
}


@dataclass(frozen=True)
class Row:
    """One run of the sweep, as MLflow has it."""

    run_name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Group:
    """Runs that differ only in the ``--mean-over`` parameter (without it, one run each)."""

    label: str  # unique in the table: the loss (+ miner), and what else tells the group apart
    loss: str  # loss name (+ "+miner"), what ``--baseline`` matches besides the label
    runs: tuple[Row, ...]
    key: str | None  # the --mean-over parameter: its value names a run inside the group (the seed)

    @property
    def status(self) -> str:
        statuses = {run.status for run in self.runs}
        return statuses.pop() if len(statuses) == 1 else "MIXED"

    def values(self, metric: str) -> dict[str, float]:
        """Seed (the ``key`` parameter's value) → the finite values of ``metric`` in the group's runs."""
        values: dict[str, float] = {}
        for run in self.runs:
            value = run.metrics.get(metric)
            if value is None or not math.isfinite(value):
                continue
            seed = run.params.get(self.key or "seed", run.run_name)
            name, repeat = seed, 2
            while name in values:  # the same seed twice (a rerun): keep both, unpaired
                name, repeat = f"{seed}#{repeat}", repeat + 1
            values[name] = value
        return values


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


def loss_label(params: Mapping[str, str]) -> str:
    """``loss`` or ``loss+miner`` from a run's params.

    >>> loss_label({"loss.name": "triplet", "miner.name": "semihard_triplets"}), loss_label({"loss.name": "l1"})
    ('triplet+semihard_triplets', 'l1')
    """
    name = params.get("loss.name", "?")
    miner = params.get("miner.name")
    return f"{name}+{miner}" if miner not in (None, "", "null", "None") else name


def group_runs(rows: Sequence[Row], mean_over: str | None) -> list[Group]:
    """Groups of rows that differ only in param ``mean_over`` (and their names and Hydra's bookkeeping), in
    order of first run.

    A group is labelled by its loss (+ miner); where two groups share that, by what else differs. Without
    ``mean_over`` every run is its own group, labelled by its run name.

    >>> rows = [Row("l1-0", "FINISHED", {"loss.name": "l1", "seed": "0"}, {"test/mae": 1.0}),
    ...         Row("l1-1", "FINISHED", {"loss.name": "l1", "seed": "1"}, {"test/mae": 3.0}),
    ...         Row("l2-0", "FINISHED", {"loss.name": "l2", "seed": "0"}, {"test/mae": 2.0})]
    >>> [(group.label, group.values("test/mae")) for group in group_runs(rows, "seed")]
    [('l1', {'0': 1.0, '1': 3.0}), ('l2', {'0': 2.0})]
    """
    if mean_over is None:
        labels = _unique([row.run_name for row in rows])
        return [Group(label, loss_label(row.params), (row,), None) for label, row in zip(labels, rows, strict=True)]
    members: dict[tuple[tuple[str, str], ...], list[Row]] = {}
    for row in rows:
        identity = tuple(
            sorted(
                (k, v) for k, v in row.params.items() if k not in (mean_over, "run_name") and not k.startswith("hydra")
            )
        )
        members.setdefault(identity, []).append(row)
    runs = [tuple(group) for group in members.values()]
    losses = [loss_label(group[0].params) for group in runs]
    labels = []
    for loss, group in zip(losses, runs, strict=True):
        namesakes = [other[0] for other, name in zip(runs, losses, strict=True) if name == loss]
        telling = [key for key in varying_params(namesakes) if key not in (mean_over, "loss.name", "miner.name")]
        details = ", ".join(f"{key}={group[0].params.get(key, '')}" for key in telling)
        labels.append(f"{loss} ({details})" if details else loss)
    return [
        Group(label, loss, group, mean_over) for label, loss, group in zip(_unique(labels), losses, runs, strict=True)
    ]


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def resolve_baseline(groups: Sequence[Group], requested: str | None) -> tuple[str | None, str]:
    """The label of the baseline group, and a note when there is none; an unknown name exits with a hint.

    ``requested`` matches a group's label, else its loss (+ miner) name; ``None`` picks ``cross_entropy``
    where exactly one group trained it; ``"none"`` turns the comparison off.
    """
    if requested is not None and requested.lower() == "none":
        return None, ""
    name = requested or DEFAULT_BASELINE
    if any(group.label == name for group in groups):
        return name, ""
    matches = [group.label for group in groups if group.loss == name]
    if len(matches) == 1:
        return matches[0], ""
    if requested is None:
        if matches:
            return None, (
                f"No baseline: {len(matches)} groups trained {name} ({', '.join(matches)}); pick one with "
                "--baseline <group>, or merge seeds with --mean-over seed."
            )
        return None, "No baseline: no group trained cross_entropy; name one with --baseline <group> for verdicts."
    if matches:
        raise SystemExit(
            f"lossforge compare: --baseline {name} matches {len(matches)} groups: {', '.join(matches)}. "
            "Name one by its full label, or merge seeds with --mean-over seed."
        )
    names = sorted({group.label for group in groups} | {group.loss for group in groups})
    raise SystemExit(
        f"lossforge compare: no group is {name!r}; groups: {', '.join(g.label for g in groups)}."
        f"{did_you_mean(name, names)}"
    )


def choose_metrics(
    rows: Sequence[Row], requested: Sequence[str] | None, directions: Mapping[str, Direction]
) -> tuple[list[str], list[str]]:
    """The metrics to compare, and a reason for each test metric left out of the default columns.

    Asked-for metrics must exist and be comparable (else the command exits, saying why); by default every
    ``test/*`` metric all runs have whose direction is known — never ``test/loss``, a different function
    for every loss.
    """
    available = sorted({key for row in rows for key in row.metrics})
    if requested:
        for metric in requested:
            if metric not in available:
                raise SystemExit(
                    f"lossforge compare: no run has a metric {metric!r}.{did_you_mean(metric, available)} "
                    f"Metrics: {', '.join(available)}"
                )
            try:
                metric_direction(metric, override=directions.get(metric))
            except ValueError as error:
                raise SystemExit(f"lossforge compare: {error}") from None
        return list(requested), []
    chosen, left_out = [], []
    for metric in headline_metrics(rows):
        name = metric_base_name(metric)
        if name in NOT_COMPARABLE:
            left_out.append(f"{metric} (each loss's own objective: not comparable across losses)")
            continue
        try:
            metric_direction(metric, override=directions.get(metric))
        except ValueError:
            left_out.append(f"{metric} (direction unknown: --higher-is-better {metric} or --lower-is-better {metric})")
            continue
        chosen.append(metric)
    return chosen, left_out


def verdict_tables(
    groups: Sequence[Group],
    metrics: Sequence[str],
    *,
    baseline: str | None,
    directions: Mapping[str, Direction] | None = None,
) -> dict[str, list[VerdictRow]]:
    """One :func:`~lossforge.evaluation.statistics.verdict_table` per metric (Holm within each metric).

    Groups without a value of a metric (their runs failed) are left out of that metric's table; so is the
    comparison when the baseline has none.
    """
    tables = {}
    for metric in metrics:
        values = {group.label: group.values(metric) for group in groups}
        values = {label: seeds for label, seeds in values.items() if seeds}
        if not values:
            continue
        tables[metric] = verdict_table(
            values,
            metric=metric,
            baseline=baseline if baseline in values else None,
            direction=(directions or {}).get(metric),
        )
    return tables


# -- rendering: plain numbers in, text out ---------------------------------------------------------------


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:+.{digits}f}"


def _interval(low: float | None, high: float | None, digits: int = 4) -> str:
    return "" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _markdown(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(rows)


def verdicts_to_markdown(rows: Sequence[VerdictRow], *, digits: int = 4) -> str:
    """One metric's verdict table as markdown: n, mean, CI and, against a baseline, difference, p, verdict.

    >>> from lossforge.evaluation.statistics import verdict_table
    >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
    ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))}, metric="test/mae", baseline="l2")
    >>> print(verdicts_to_markdown(rows, digits=2))
    | group | n | test/mae ↓ | 95 % CI | difference | 95 % CI of the difference | p | p (Holm) | verdict |
    |---|---|---|---|---|---|---|---|---|
    | l2 | 6 | 2.15 ± 0.10 | [2.04, 2.26] |  |  |  |  | baseline |
    | l1 | 6 | 0.20 ± 0.09 | [0.11, 0.29] | -1.95 | [-2.06, -1.84] | 0.0312 | 0.0312 | better |
    """
    if not rows:
        return ""
    metric = f"{rows[0].metric} {ARROWS[rows[0].direction]}"
    baseline = next((row.baseline for row in rows if row.baseline), None)
    header = ["group", "n", metric, "95 % CI"]
    if baseline:
        header += ["difference", "95 % CI of the difference", "p", "p (Holm)", "verdict"]
    lines = []
    for row in rows:
        mean = _number(row.mean, digits) + (f" ± {row.std:.{digits}f}" if row.std is not None else "")
        cells = [row.group, str(row.n), mean, _interval(row.ci_low, row.ci_high, digits)]
        if baseline:
            interval = _interval(row.difference_ci_low, row.difference_ci_high, digits)
            verdict = "baseline" if row.group == baseline else (row.verdict or "")
            cells += [_signed(row.difference, digits), interval, _p(row.p_value), _p(row.p_adjusted), verdict]
        lines.append(cells)
    return _markdown(header, lines)


def verdicts_to_csv(rows: Sequence[VerdictRow]) -> str:
    """Rows of any metrics as CSV, one line per group and metric (each seed's value: see the JSON)."""
    columns = [f.name for f in dataclasses.fields(VerdictRow) if f.name != "values"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.as_dict().items()})
    return buffer.getvalue()


def verdicts_to_json(rows: Sequence[VerdictRow], failed: Sequence[Mapping[str, Any]] = ()) -> str:
    """Rows of any metrics as a JSON list of objects (``null`` where a number does not exist), then the
    ``failed`` groups (``{"group", "metric", "n": 0, "verdict": "failed", "error"}``).

    >>> from lossforge.evaluation.statistics import verdict_table
    >>> rows = json.loads(verdicts_to_json(verdict_table({"a": {0: 1.0}}, metric="test/mae")))
    >>> rows[0]["group"], rows[0]["n"], rows[0]["ci_low"], rows[0]["direction"]
    ('a', 1, None, 'lower')
    """
    everything = [row.as_dict() for row in rows] + [dict(row) for row in failed]
    return json.dumps(everything, indent=2, ensure_ascii=False, allow_nan=False)


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


def overview_table(groups: Sequence[Group], params: Sequence[str], tables: Mapping[str, Sequence[VerdictRow]]) -> str:
    """One line per group: label, status, n, the parameters that differ, ``mean ± std`` per metric."""
    by_group = {metric: {row.group: row for row in rows} for metric, rows in tables.items()}
    merged = any(group.key for group in groups)
    header = ["group" if merged else "run", "status", *(["n"] if merged else []), *params]
    header += [f"{metric} {ARROWS[rows[0].direction]}" for metric, rows in tables.items() if rows]
    lines = []
    for group in groups:
        cells = [group.label, group.status, *([str(len(group.runs))] if merged else [])]
        cells += [_shared(group, param) for param in params]
        for metric in tables:
            row = by_group[metric].get(group.label)
            if row is None:
                cells.append("—")
            else:
                cells.append(_number(row.mean) + (f" ± {row.std:.4f}" if row.std is not None else ""))
        lines.append(cells)
    return _markdown(header, lines)


def _shared(group: Group, param: str) -> str:
    values = dict.fromkeys(_param(run.params.get(param, "")) for run in group.runs)
    return ",".join(values)


def _param(value: str) -> str:
    """A parameter as the table shows it: tuned floats to 4 significant digits, the rest as logged.

    >>> _param("0.0022373901095679746"), _param("1e-05"), _param("64"), _param("euclidean")
    ('0.002237', '1e-05', '64', 'euclidean')
    """
    try:
        number = float(value)
    except ValueError:
        return value
    return value if value.lstrip("-").isdigit() else f"{number:.4g}"


def comparison_markdown(
    groups: Sequence[Group],
    params: Sequence[str],
    tables: Mapping[str, Sequence[VerdictRow]],
    *,
    notes: Sequence[str] = (),
) -> str:
    """The whole comparison as markdown: the overview, the legend, notes, then a verdict table per metric."""
    parts = [overview_table(groups, params, tables), LEGEND]
    if any(row.n == 1 for rows in tables.values() for row in rows):
        parts.append(
            "Groups with n = 1 show a mean without interval or verdict: an interval needs at least 2 runs to "
            "estimate the spread (run several seeds, e.g. `seed=0,1,2`, and compare with `--mean-over seed`)."
        )
    parts += notes
    for metric, rows in tables.items():
        baseline = next((row.baseline for row in rows if row.baseline), None)
        title = f"### {metric} {ARROWS[rows[0].direction]}" + (f" — against {baseline}" if baseline else "")
        parts += [title, verdicts_to_markdown(rows)]
        if baseline:
            comparisons = sum(row.verdict is not None for row in rows)
            paired = {row.paired for row in rows if row.verdict is not None}
            pairing = (
                "paired by seed"
                if paired == {True}
                else "unpaired (Welch)"
                if paired == {False}
                else "paired by seed where both ran the same seeds, else unpaired (Welch)"
            )
            parts.append(
                f"Difference = group − {baseline}, {pairing}. p: two-sided permutation test (sign flips when "
                f"paired; exact up to {PERMUTATIONS} arrangements), Holm-adjusted over the {comparisons} comparison"
                f"{'s' if comparisons != 1 else ''} of this metric; verdicts at α = {ALPHA:g} "
                f"(intervals {CONFIDENCE:.0%})."
            )
    return "\n\n".join(parts) + "\n"


def group_metrics(tables: Mapping[str, Sequence[VerdictRow]]) -> dict[str, float]:
    """``<group>/<metric>/mean`` (and ``ci_low``, ``ci_high``) for the parent run; MLflow-safe names.

    >>> from lossforge.evaluation.statistics import verdict_table
    >>> group_metrics({"test/mae": verdict_table({"huber (loss.delta=2)": {0: 0.5}}, metric="test/mae")})
    {'huber_loss.delta_2/test/mae/mean': 0.5}
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
    """``label`` with what MLflow refuses in a metric name (and ``/``, its nesting) replaced by ``_``.

    >>> mlflow_name("focal (loss.gamma=2.0)"), mlflow_name("triplet+semihard_triplets")
    ('focal_loss.gamma_2.0', 'triplet_semihard_triplets')
    """
    return re.sub(r"\s*[^\w.\- ]+\s*", "_", label).strip(" ._") or "group"


# -- the command ---------------------------------------------------------------------------------------


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


def _children(client: Any, experiment_id: str, run_id: str) -> list[Any]:
    return list(
        client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
            order_by=["attributes.start_time ASC"],
        )
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossforge compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the sweep's parent run (default: the latest)")
    parser.add_argument("--sweep", help=argparse.SUPPRESS)  # the flag RUN_ID replaced; still accepted
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--experiment", default="lossforge", help="MLflow experiment name (default: lossforge)")
    parser.add_argument("--metrics", help="comma-separated metrics (default: every comparable test/* metric)")
    parser.add_argument("--mean-over", metavar="PARAM", help="group runs differing only in PARAM (e.g. seed)")
    parser.add_argument(
        "--baseline",
        metavar="NAME",
        help=f"the group the others are judged against: a loss name or a full group label; 'none' for no "
        f"verdicts (default: {DEFAULT_BASELINE} where one group trained it)",
    )
    parser.add_argument(
        "--higher-is-better", metavar="METRICS", default="", help="comma-separated metrics where higher is better"
    )
    parser.add_argument(
        "--lower-is-better", metavar="METRICS", default="", help="comma-separated metrics where lower is better"
    )
    parser.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "json"),
        default="table",
        help="what to print: the tables with a header (default), the markdown document, or the rows as CSV/JSON",
    )
    parser.add_argument("--output", default="outputs/compare.png", help="where to write the PNG plot")
    parser.add_argument(
        "--across",
        metavar="RUN_IDS",
        help="comma-separated sweep/comparison runs, one per dataset: rank the losses on each and run a "
        "Friedman test with the Nemenyi critical-difference diagram (needs --metrics with one metric)",
    )
    parser.add_argument("--no-log", action="store_true", help="do not log tables, plot and metrics to the sweep's run")
    return parser


def _directions(args: argparse.Namespace) -> dict[str, Direction]:
    higher = [m for m in args.higher_is_better.split(",") if m]
    lower = [m for m in args.lower_is_better.split(",") if m]
    both = sorted(set(higher) & set(lower))
    if both:
        raise SystemExit(f"lossforge compare: {', '.join(both)} cannot be both higher- and lower-is-better")
    directions: dict[str, Direction] = {metric: "higher" for metric in higher}
    directions.update({metric: "lower" for metric in lower})
    return directions


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    directions = _directions(args)
    if args.across:
        return across_datasets(args, directions)
    machine = args.format in ("csv", "json")
    say: TextIO = sys.stderr if machine else sys.stdout  # keep stdout parseable for csv/json

    from mlflow import MlflowClient

    tracking_uri = resolve_tracking_uri(args.tracking_uri, base_dir=Path.cwd())
    check_reachable(tracking_uri)  # a damaged store: one paragraph naming it (lossforge.tracking.store)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"lossforge compare: no MLflow experiment named {args.experiment!r} in {client.tracking_uri}")
    parent = find_sweep(client, experiment.experiment_id, args.run_id or args.sweep)
    children = _children(client, experiment.experiment_id, parent.info.run_id)
    protocol_notes: list[str] = []
    failed_groups: list[dict[str, Any]] = []  # a comparison's entries whose every tuning trial failed
    protocol = parent.data.tags.get(PROTOCOL_STAGE) == "comparison"
    if protocol:  # lossforge benchmark: the studies' seed runs
        failed_groups = [
            {
                "group": study.data.tags.get("entry", study.info.run_name),
                "metric": parent.data.tags.get("lossforge.protocol.metric"),
                "n": 0,
                "verdict": "failed",
                "error": study.data.tags.get("lossforge.error", ""),
            }
            for study in children
            if study.info.status == "FAILED"
        ]
        protocol_notes = [f"Failed: {row['group']} — {row['error']}" for row in failed_groups]
        children = [run for study in children for run in _children(client, experiment.experiment_id, study.info.run_id)]
        args.mean_over = args.mean_over or "seed"
        args.baseline = args.baseline or parent.data.params.get("baseline")
    rows = [Row(c.info.run_name, c.info.status, dict(c.data.params), dict(c.data.metrics)) for c in children]
    if not rows:
        raise SystemExit(f"lossforge compare: the run {parent.info.run_id} has no child runs; is it a sweep's parent?")
    requested = [m for m in args.metrics.split(",") if m] if args.metrics else None
    metrics, left_out = choose_metrics(rows, requested, directions)
    if protocol and parent.data.tags.get("lossforge.protocol.metric") in metrics:
        selection = parent.data.tags["lossforge.protocol.metric"]
        metrics = [selection, *(metric for metric in metrics if metric != selection)]  # what decided, first
    groups = group_runs(rows, args.mean_over)
    baseline, baseline_note = resolve_baseline(groups, args.baseline)
    if baseline:
        groups = sorted(groups, key=lambda group: group.label != baseline)  # the baseline first, the rest in order
    try:
        tables = verdict_tables(groups, metrics, baseline=baseline, directions=directions)
    except (NotComparableError, ValueError) as error:
        raise SystemExit(f"lossforge compare: {error}") from None
    params = [key for key in varying_params(rows) if key != args.mean_over]
    notes = [note for note in [baseline_note] if note] + protocol_notes
    if left_out:
        notes.append("Left out: " + "; ".join(left_out) + ".")
    if not args.mean_over and "seed" in params and len(groups) > 1:
        notes.append("Runs differ in seed: `--mean-over seed` merges them into groups with intervals and verdicts.")
    document = comparison_markdown(groups, params, tables, notes=notes)
    verdict_rows = [row for rows_of_metric in tables.values() for row in rows_of_metric]
    overrides = parent.data.params.get("overrides", "")
    if args.mean_over:
        counted = f"{len(groups)} groups from {len(rows)} runs, mean over {args.mean_over}"
    else:
        counted = f"{len(rows)} runs"
    kind = "Comparison" if protocol else "Sweep"
    if args.format == "table":
        print(f"{kind} {parent.info.run_id} ({overrides}): {counted}\n")
        print(document)
    elif args.format == "markdown":
        print(document)
    else:
        print(verdicts_to_csv(verdict_rows) if args.format == "csv" else verdicts_to_json(verdict_rows, failed_groups))
    figure = verdict_figure(tables) if tables else None
    if figure is not None:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(output, dpi=120)
        print(f"Plot: {output}", file=say)
    if not args.no_log:
        _log_to_parent(client, parent.info.run_id, document, verdict_rows, tables, figure, counted, failed_groups)
        logged = f"{', '.join(ARTIFACTS)}, group metrics"
        print(f"Logged to the {kind.lower()}'s MLflow run {parent.info.run_id}: {logged}", file=say)
    return 0


def _log_to_parent(
    client: Any,
    run_id: str,
    document: str,
    rows: Sequence[VerdictRow],
    tables: Mapping[str, Sequence[VerdictRow]],
    figure: Figure | None,
    title: str,
    failed: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Tables, plot and ``<group>/<metric>/mean|ci_low|ci_high`` metrics onto the sweep's parent run."""
    import time

    from mlflow.entities import Metric

    client.log_text(run_id, f"# Comparison: {title}\n\n{document}", "comparison/table.md")
    client.log_text(run_id, verdicts_to_csv(rows), "comparison/table.csv")
    client.log_text(run_id, verdicts_to_json(rows, failed) + "\n", "comparison/table.json")
    if figure is not None:
        client.log_figure(run_id, figure, "comparison/plot.png")
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in group_metrics(tables).items()]
    for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def across_datasets(args: argparse.Namespace, directions: Mapping[str, Direction]) -> int:
    """``lossforge compare --across RUN1,RUN2,… --metrics M``: each run (a sweep or a comparison on one
    dataset) gives each loss its mean ``M`` over seeds; the losses all runs share are ranked per dataset and
    compared by Friedman's test with the Nemenyi critical difference (Demšar 2006), drawn as a diagram."""
    from mlflow import MlflowClient

    from lossforge.evaluation.statistics import critical_difference_figure, friedman_nemenyi

    metrics = [m for m in (args.metrics or "").split(",") if m]
    if len(metrics) != 1:
        raise SystemExit(
            "lossforge compare --across: name the one metric to rank by with --metrics, e.g. test/f1_macro"
        )
    metric = metrics[0]
    tracking_uri = resolve_tracking_uri(args.tracking_uri, base_dir=Path.cwd())
    check_reachable(tracking_uri)  # a damaged store: one paragraph naming it (lossforge.tracking.store)
    client = MlflowClient(tracking_uri)
    scores: dict[str, dict[str, float]] = {}
    for run_id in [run for run in args.across.split(",") if run]:
        parent = client.get_run(run_id)
        children = _children(client, parent.info.experiment_id, run_id)
        if parent.data.tags.get(PROTOCOL_STAGE) == "comparison":
            children = [
                run for study in children for run in _children(client, parent.info.experiment_id, study.info.run_id)
            ]
        rows = [Row(c.info.run_name, c.info.status, dict(c.data.params), dict(c.data.metrics)) for c in children]
        dataset = str(parent.data.tags.get("dataset") or next((row.params.get("dataset.name") for row in rows), run_id))
        label = dataset if dataset not in {name for values in scores.values() for name in values} else run_id
        for group in group_runs(rows, "seed"):
            values = group.values(metric)
            if values:
                scores.setdefault(group.loss, {})[label] = sum(values.values()) / len(values)
    datasets = {name for values in scores.values() for name in values}
    shared = {loss: values for loss, values in scores.items() if set(values) == datasets}
    left_out = sorted(set(scores) - set(shared))
    try:
        result = friedman_nemenyi(shared, metric=metric, direction=directions.get(metric))
    except ValueError as error:
        raise SystemExit(f"lossforge compare --across: {error}") from None
    lines = [f"{len(shared)} losses on {result.n_datasets} datasets ({', '.join(sorted(datasets))}), by {metric}:", ""]
    lines += [
        _markdown(
            ["loss", "average rank (1 = best)"], [[loss, f"{rank:.2f}"] for loss, rank in result.average_ranks.items()]
        )
    ]
    lines += [
        "",
        f"Friedman: chi2 = {result.statistic:.3f}, p = {result.p_value:.3g}. Nemenyi critical difference at "
        f"alpha = {result.alpha:g}: {result.critical_difference:.3f} (two losses whose average ranks differ by less "
        "are not told apart).",
    ]
    if left_out:
        lines.append(f"Left out (not run on every dataset): {', '.join(left_out)}.")
    print("\n".join(lines))
    figure = critical_difference_figure(result, title=f"{metric}: average rank over {result.n_datasets} datasets")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    print(f"Critical-difference diagram: {output}")
    return 0
