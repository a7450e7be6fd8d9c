"""A sweep's runs read back from MLflow, with a verdict on every difference.

A sweep is one parent MLflow run with a child run per job (see `lossforge.sweeps.MlflowSweepCallback`).
Runs that differ only in `--mean-over` (usually `seed`) form a group; every other group is compared to a baseline
group (`cross_entropy` where the sweep has it) on every comparable test metric, with the statistics of
[lossforge.evaluation.statistics][]: mean, sample standard deviation, 95 % confidence intervals, a
permutation test paired by seed, Holm's correction, and a verdict. The tables (markdown, CSV, JSON), a
plot of every seed, and each group's mean and interval as metrics are logged to the parent run, so the
dashboard's run list shows which loss won; `lossforge compare RUN_ID` rebuilds them from the store.

[compare][lossforge.evaluation.compare.compare] reads a sweep back and returns a
[ComparisonReport][lossforge.evaluation.compare.ComparisonReport] (`lossforge compare` is the command over it,
[lossforge.commands.compare][]; a sweep's end and `lossforge benchmark` call it too). Everything but
[compare][lossforge.evaluation.compare.compare], [compare_across][lossforge.evaluation.compare.compare_across] and
[find_sweep][lossforge.evaluation.compare.find_sweep] works on plain numbers —
[verdicts_to_markdown][lossforge.evaluation.compare.verdicts_to_markdown],
[verdicts_to_csv][lossforge.evaluation.compare.verdicts_to_csv],
[verdicts_to_json][lossforge.evaluation.compare.verdicts_to_json] and
[verdict_figure][lossforge.evaluation.dashboard.verdict_figure] render the rows of
[lossforge.evaluation.statistics.verdict_table][] wherever they come from.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossforge.contract import did_you_mean
from lossforge.evaluation.dashboard import ARROWS, ARTIFACTS, log_comparison, verdict_figure
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
from lossforge.tracking import check_reachable, redact_uri, resolve_tracking_uri
from lossforge.tracking.store import DEFAULT_STORE, sqlite_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_BASELINE = "cross_entropy"
PROTOCOL_STAGE = "lossforge.protocol.stage"
"""The tag `lossforge benchmark` puts on its runs: `comparison` (the parent), `study`, `final`."""
LEGEND = (
    "± is the sample standard deviation over a group's runs; [low, high] is the 95 % confidence interval "
    "(Student t). ↑: higher is better, ↓: lower is better."
)


@dataclass(frozen=True)
class Row:
    """One run of the sweep, as MLflow has it."""

    run_name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    run_id: str = ""  # the MLflow run (a logged comparison tags it with its group)


@dataclass(frozen=True)
class Group:
    """Runs that differ only in the `--mean-over` parameter (without it, one run each)."""

    label: str  # unique in the table: the loss (+ miner), and what else tells the group apart
    loss: str  # loss name (+ "+miner"), what ``--baseline`` matches besides the label
    runs: tuple[Row, ...]
    key: str | None  # the --mean-over parameter: its value names a run inside the group (the seed)

    @property
    def status(self) -> str:
        statuses = {run.status for run in self.runs}
        return statuses.pop() if len(statuses) == 1 else "MIXED"

    def values(self, metric: str) -> dict[str, float]:
        """Seed (the `key` parameter's value) → the finite values of `metric` in the group's runs."""
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

    ```pycon
    >>> rows = [Row("a", "FINISHED", {"loss.name": "l1", "seed": "0"}, {}),
    ...         Row("b", "FINISHED", {"loss.name": "l2", "seed": "0"}, {})]
    >>> varying_params(rows)
    ['loss.name']

    ```
    """
    keys = sorted({key for row in rows for key in row.params})
    return [key for key in keys if not key.startswith(tuple(ignore)) and len({row.params.get(key) for row in rows}) > 1]


def headline_metrics(rows: Sequence[Row], prefix: str = "test/") -> list[str]:
    """Metrics every finished row has under `prefix` (per-class breakdowns, with a second `/`, left out)."""
    finished = [row for row in rows if row.metrics]
    if not finished:
        return []
    common = set.intersection(*(set(row.metrics) for row in finished))
    return sorted(key for key in common if key.startswith(prefix) and key.count("/") == 1)


def loss_label(params: Mapping[str, str]) -> str:
    """`loss` or `loss+miner` from a run's params.

    ```pycon
    >>> loss_label({"loss.name": "triplet", "miner.name": "semihard_triplets"}), loss_label({"loss.name": "l1"})
    ('triplet+semihard_triplets', 'l1')

    ```
    """
    name = params.get("loss.name", "?")
    miner = params.get("miner.name")
    return f"{name}+{miner}" if miner not in (None, "", "null", "None") else name


def group_runs(rows: Sequence[Row], mean_over: str | None) -> list[Group]:
    """Groups of rows that differ only in param `mean_over` (and their names and Hydra's bookkeeping), in
    order of first run.

    A group is labelled by its loss (+ miner); where two groups share that, by what else differs. Without
    `mean_over` every run is its own group, labelled by its run name.

    ```pycon
    >>> rows = [Row("l1-0", "FINISHED", {"loss.name": "l1", "seed": "0"}, {"test/mae": 1.0}),
    ...         Row("l1-1", "FINISHED", {"loss.name": "l1", "seed": "1"}, {"test/mae": 3.0}),
    ...         Row("l2-0", "FINISHED", {"loss.name": "l2", "seed": "0"}, {"test/mae": 2.0})]
    >>> [(group.label, group.values("test/mae")) for group in group_runs(rows, "seed")]
    [('l1', {'0': 1.0, '1': 3.0}), ('l2', {'0': 2.0})]

    ```
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
    """The label of the baseline group, and a note when there is none; an unknown name raises
    [ComparisonError][lossforge.evaluation.compare.ComparisonError] with a hint.

    `requested` matches a group's label, else its loss (+ miner) name; `None` picks `cross_entropy`
    where exactly one group trained it; `"none"` turns the comparison off.
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
        raise ComparisonError(
            f"--baseline {name} matches {len(matches)} groups: {', '.join(matches)}. "
            "Name one by its full label, or merge seeds with --mean-over seed."
        )
    names = sorted({group.label for group in groups} | {group.loss for group in groups})
    raise ComparisonError(
        f"no group is {name!r}; groups: {', '.join(g.label for g in groups)}.{did_you_mean(name, names)}"
    )


def choose_metrics(
    rows: Sequence[Row], requested: Sequence[str] | None, directions: Mapping[str, Direction]
) -> tuple[list[str], list[str]]:
    """The metrics to compare, and a reason for each test metric left out of the default columns.

    Asked-for metrics must exist and be comparable (else [ComparisonError][lossforge.evaluation.compare.ComparisonError]
    says why); by default every `test/*` metric all runs have whose direction is known — never `test/loss`, a different
    function for every loss.
    """
    available = sorted({key for row in rows for key in row.metrics})
    if requested:
        for metric in requested:
            if metric not in available:
                raise ComparisonError(
                    f"no run has a metric {metric!r}.{did_you_mean(metric, available)} Metrics: {', '.join(available)}"
                )
            try:
                metric_direction(metric, override=directions.get(metric))
            except ValueError as error:
                raise ComparisonError(str(error)) from None
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
    """One [verdict_table][lossforge.evaluation.statistics.verdict_table] per metric (Holm within each metric).

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

    ```pycon
    >>> from lossforge.evaluation.statistics import verdict_table
    >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
    ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))}, metric="test/mae", baseline="l2")
    >>> print(verdicts_to_markdown(rows, digits=2))
    | group | n | test/mae ↓ | 95 % CI | difference | 95 % CI of the difference | p | p (Holm) | verdict |
    |---|---|---|---|---|---|---|---|---|
    | l2 | 6 | 2.15 ± 0.10 | [2.04, 2.26] |  |  |  |  | baseline |
    | l1 | 6 | 0.20 ± 0.09 | [0.11, 0.29] | -1.95 | [-2.06, -1.84] | 0.0312 | 0.0312 | better |

    ```
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
    """Rows of any metrics as a JSON list of objects (`null` where a number does not exist), then the
    `failed` groups (`{"group", "metric", "n": 0, "verdict": "failed", "error"}`).

    ```pycon
    >>> from lossforge.evaluation.statistics import verdict_table
    >>> rows = json.loads(verdicts_to_json(verdict_table({"a": {0: 1.0}}, metric="test/mae")))
    >>> rows[0]["group"], rows[0]["n"], rows[0]["ci_low"], rows[0]["direction"]
    ('a', 1, None, 'lower')

    ```
    """
    everything = [row.as_dict() for row in rows] + [dict(row) for row in failed]
    return json.dumps(everything, indent=2, ensure_ascii=False, allow_nan=False)


def overview_table(groups: Sequence[Group], params: Sequence[str], tables: Mapping[str, Sequence[VerdictRow]]) -> str:
    """One line per group: label, status, n, the parameters that differ, `mean ± std` per metric."""
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

    ```pycon
    >>> _param("0.0022373901095679746"), _param("1e-05"), _param("64"), _param("euclidean")
    ('0.002237', '1e-05', '64', 'euclidean')

    ```
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


# -- the comparison, read back from MLflow ---------------------------------------------------------------


class ComparisonError(ValueError):
    """A comparison that cannot be made as asked — no such experiment, sweep, metric or baseline, or metrics
    that cannot be compared; the message says what to do instead."""


@dataclass(frozen=True)
class ComparisonReport:
    """A sweep's (or a `lossforge benchmark` comparison's) runs compared: the groups, a verdict table per
    metric, the notes, and the figure; rendered by [to_text][lossforge.evaluation.compare.ComparisonReport.to_text],
    [to_markdown][lossforge.evaluation.compare.ComparisonReport.to_markdown],
    [to_csv][lossforge.evaluation.compare.ComparisonReport.to_csv] and
    [to_json][lossforge.evaluation.compare.ComparisonReport.to_json] (what `lossforge compare --format` prints)."""

    run_id: str  # the parent run compared
    kind: str  # "Sweep" or "Comparison" (lossforge benchmark's)
    overrides: str  # the sweep's command-line overrides, as its parent run records them
    summary: str  # "3 groups from 9 runs, mean over seed"
    groups: tuple[Group, ...]
    params: tuple[str, ...]  # the parameters that tell the groups apart
    tables: dict[str, list[VerdictRow]]  # metric → its verdict table
    notes: tuple[str, ...]
    failed: tuple[dict[str, Any], ...] = ()  # a comparison's entries whose every tuning trial failed
    figure: Figure | None = None  # each seed, each group's mean and CI (None without a table)
    logged: bool = False  # whether the tables, the figure and the group metrics went onto the parent run

    @property
    def rows(self) -> list[VerdictRow]:
        """Every verdict row, metric by metric."""
        return [row for rows in self.tables.values() for row in rows]

    def to_markdown(self) -> str:
        """The whole comparison as markdown
        ([comparison_markdown][lossforge.evaluation.compare.comparison_markdown])."""
        return comparison_markdown(self.groups, self.params, self.tables, notes=self.notes)

    def to_text(self) -> str:
        """A line naming the sweep, then the markdown: what `lossforge compare` prints by default."""
        return f"{self.kind} {self.run_id} ({self.overrides}): {self.summary}\n\n{self.to_markdown()}"

    def to_csv(self) -> str:
        """The verdict rows as CSV ([verdicts_to_csv][lossforge.evaluation.compare.verdicts_to_csv])."""
        return verdicts_to_csv(self.rows)

    def to_json(self) -> str:
        """The verdict rows and the failed entries as JSON
        ([verdicts_to_json][lossforge.evaluation.compare.verdicts_to_json])."""
        return verdicts_to_json(self.rows, self.failed)

    def render(self, format: str = "table") -> str:
        """`"table"` ([to_text][lossforge.evaluation.compare.ComparisonReport.to_text]), `"markdown"`, `"csv"` or
        `"json"`."""
        renderers = {"table": self.to_text, "markdown": self.to_markdown, "csv": self.to_csv, "json": self.to_json}
        if format not in renderers:
            raise ValueError(f"Expected `format` in {sorted(renderers)}, got {format!r}")
        return renderers[format]()

    def save_figure(self, path: str | Path) -> Path | None:
        """Write the figure to `path` (its folder created); `None` when there is no figure."""
        if self.figure is None:
            return None
        output = Path(path)
        output.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(output, dpi=120)
        return output

    def footer(self, plot: Path | None) -> list[str]:
        """The lines `lossforge compare` prints after the tables: where the plot went, what was logged."""
        lines = [f"Plot: {plot}"] if plot is not None else []
        if self.logged:
            logged = f"{', '.join(ARTIFACTS)}, group metrics"
            lines.append(f"Logged to the {self.kind.lower()}'s MLflow run {self.run_id}: {logged}")
        return lines


def compare(
    run_id: str | None = None,
    *,
    tracking_uri: str | None = None,
    experiment: str = "lossforge",
    metrics: Sequence[str] | None = None,
    mean_over: str | None = None,
    baseline: str | None = None,
    directions: Mapping[str, Direction] | None = None,
    log: bool = True,
    base_dir: Path | None = None,
) -> ComparisonReport:
    """Compare the runs of the sweep `run_id` (default: the experiment's latest) — or of a `lossforge
    benchmark` comparison, whose seed runs are read through its studies — and, with `log`, log the tables,
    the figure and each group's mean and CI onto its parent run.

    Args:
        run_id: the sweep's (or comparison's) parent run; `None`: the experiment's most recent sweep.
        tracking_uri: the MLflow store (default: `$MLFLOW_TRACKING_URI`, else `outputs/mlflow.db` under
            `base_dir`).
        experiment: the MLflow experiment's name.
        metrics: the metrics to compare (default: every comparable `test/*` metric all runs have).
        mean_over: group runs that differ only in this parameter (`"seed"`); a comparison's default.
        baseline: the group the others are judged against (a loss name or a full group label; `"none"`
            for no verdicts); default: `cross_entropy` where one group trained it.
        directions: `{"higher"|"lower"}` per metric whose direction lossforge does not know.
        log: log the result onto the parent run.
        base_dir: where a relative store is (default: the current directory).

    Raises:
        ComparisonError: when the comparison cannot be made as asked; the message says why.
    """
    from mlflow import MlflowClient

    directions = dict(directions or {})
    configured = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    where = "--tracking-uri" if tracking_uri else "MLFLOW_TRACKING_URI" if configured else "the default store"
    # Reading creates nothing: a store (and its folder) is made by training, never by a comparison.
    store = configured or f"sqlite:///{((base_dir or Path.cwd()) / DEFAULT_STORE).resolve()}"
    database = sqlite_path(store)
    if database is not None and not database.exists():
        raise ComparisonError(
            f"no MLflow store at {database} (looked there: {where}). Run an experiment first, or point at a "
            f"store with --tracking-uri <uri> (or MLFLOW_TRACKING_URI)."
        )
    check_reachable(store)  # a damaged store: one paragraph naming it (lossforge.tracking.store)
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ComparisonError(f"no MLflow experiment named {experiment!r} in {client.tracking_uri}")
    parent = find_sweep(client, found.experiment_id, run_id)
    children = _children(client, found.experiment_id, parent.info.run_id)
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
        children = [run for study in children for run in _children(client, found.experiment_id, study.info.run_id)]
        mean_over = mean_over or "seed"
        baseline = baseline or parent.data.params.get("baseline")
    rows = [
        Row(c.info.run_name, c.info.status, dict(c.data.params), dict(c.data.metrics), c.info.run_id) for c in children
    ]
    if not rows:
        raise ComparisonError(f"the run {parent.info.run_id} has no child runs; is it a sweep's parent?")
    chosen, left_out = choose_metrics(rows, list(metrics) if metrics else None, directions)
    if protocol and parent.data.tags.get("lossforge.protocol.metric") in chosen:
        selection = parent.data.tags["lossforge.protocol.metric"]
        chosen = [selection, *(metric for metric in chosen if metric != selection)]  # what decided, first
    if mean_over and not any(mean_over in row.params for row in rows):
        names = sorted({key for row in rows for key in row.params if not key.startswith("hydra")})
        raise ComparisonError(
            f"--mean-over {mean_over}: no run has a parameter {mean_over!r}.{did_you_mean(mean_over, names)} "
            f"Parameters that differ between the runs: {', '.join(varying_params(rows)) or 'none'}."
        )
    groups = group_runs(rows, mean_over)
    baseline_label, baseline_note = resolve_baseline(groups, baseline)
    if baseline_label:
        groups = sorted(groups, key=lambda group: group.label != baseline_label)  # the baseline first
    try:
        tables = verdict_tables(groups, chosen, baseline=baseline_label, directions=directions)
    except (NotComparableError, ValueError) as error:
        raise ComparisonError(str(error)) from None
    params = [key for key in varying_params(rows) if key != mean_over]
    notes = [note for note in [baseline_note] if note] + protocol_notes
    if left_out:
        notes.append("Left out: " + "; ".join(left_out) + ".")
    if not mean_over and "seed" in params and len(groups) > 1:
        notes.append("Runs differ in seed: `--mean-over seed` merges them into groups with intervals and verdicts.")
    if mean_over:
        summary = f"{len(groups)} groups from {len(rows)} runs, mean over {mean_over}"
    else:
        summary = f"{len(rows)} runs"
    report = ComparisonReport(
        run_id=parent.info.run_id,
        kind="Comparison" if protocol else "Sweep",
        overrides=parent.data.params.get("overrides", ""),
        summary=summary,
        groups=tuple(groups),
        params=tuple(params),
        tables=tables,
        notes=tuple(notes),
        failed=tuple(failed_groups),
        figure=verdict_figure(tables) if tables else None,
        logged=log,
    )
    if log:
        log_comparison(client, report)
    return report


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


@dataclass(frozen=True)
class AcrossReport:
    """Losses ranked on several datasets ([compare_across][lossforge.evaluation.compare.compare_across]): Friedman's
    test, the Nemenyi critical difference, and its diagram."""

    metric: str
    result: Any  # lossforge.evaluation.statistics.FriedmanResult
    datasets: tuple[str, ...]
    left_out: tuple[str, ...]  # losses not run on every dataset
    figure: Figure

    def to_text(self) -> str:
        """The ranks as a markdown table, the test's statistic and the critical difference."""
        result = self.result
        lines = [
            f"{len(result.average_ranks)} losses on {result.n_datasets} datasets ({', '.join(self.datasets)}), "
            f"by {self.metric}:",
            "",
        ]
        ranks = [[loss, f"{rank:.2f}"] for loss, rank in result.average_ranks.items()]
        lines += [_markdown(["loss", "average rank (1 = best)"], ranks)]
        lines += [
            "",
            f"Friedman: chi2 = {result.statistic:.3f}, p = {result.p_value:.3g}. Nemenyi critical difference at "
            f"alpha = {result.alpha:g}: {result.critical_difference:.3f} (two losses whose average ranks differ by "
            "less are not told apart).",
        ]
        if self.left_out:
            lines.append(f"Left out (not run on every dataset): {', '.join(self.left_out)}.")
        return "\n".join(lines)


def compare_across(
    run_ids: Sequence[str],
    *,
    metric: str,
    tracking_uri: str | None = None,
    directions: Mapping[str, Direction] | None = None,
    base_dir: Path | None = None,
) -> AcrossReport:
    """Each run of `run_ids` (a sweep or a comparison on one dataset) gives each loss its mean `metric`
    over seeds; the losses all runs share are ranked per dataset and compared by Friedman's test with the
    Nemenyi critical difference (Demšar 2006), drawn as a diagram.

    Raises:
        ComparisonError: fewer than 2 datasets, or too few losses in common; the message says which.
    """
    from mlflow import MlflowClient

    from lossforge.evaluation.statistics import critical_difference_figure, friedman_nemenyi

    store = resolve_tracking_uri(tracking_uri, base_dir=base_dir or Path.cwd())
    check_reachable(store)  # a damaged store: one paragraph naming it (lossforge.tracking.store)
    client = MlflowClient(store)
    scores: dict[str, dict[str, float]] = {}
    for run_id in run_ids:
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
    try:
        result = friedman_nemenyi(shared, metric=metric, direction=(directions or {}).get(metric))
    except ValueError as error:
        raise ComparisonError(str(error)) from None
    figure = critical_difference_figure(result, title=f"{metric}: average rank over {result.n_datasets} datasets")
    return AcrossReport(metric, result, tuple(sorted(datasets)), tuple(sorted(set(scores) - set(shared))), figure)
