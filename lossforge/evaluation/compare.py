"""A sweep's runs read back from MLflow, with a verdict on every difference.

A sweep is one parent MLflow run with a child run per job (see `lossforge.sweeps.MlflowSweepCallback`). Runs
that differ only in the seed (and whatever `--mean-over` adds) form a group, named by its loss and what else
tells it apart (`focal gamma=2`); every other group is compared to a baseline group (the task's:
`TaskSpec.baseline`) on every comparable test metric, with the statistics of
[lossforge.evaluation.statistics][lossforge.evaluation.statistics]: mean, sample standard deviation, 95 %
confidence intervals, a permutation test paired by seed, Holm's correction, and a verdict.

Which runs count follows `docs/decisions.md` §2: the newest finished run of each seed; a group that diverged
on some seeds gets "diverged on k of n seeds" instead of a verdict; failed and killed runs are listed under
the tables; superseded runs never count.

[compare][lossforge.evaluation.compare.compare] reads a sweep back and returns a
[ComparisonReport][lossforge.evaluation.compare.ComparisonReport]; it writes nothing unless asked (`log=True`,
`lossforge compare --log`, and a sweep's own end-of-sweep comparison, which logs the verdict onto the parent
run through [log_comparison][lossforge.evaluation.dashboard.log_comparison]). `lossforge compare` is the command
over it, and `lossforge benchmark` prints and logs the same report. Everything but `compare`, `compare_across`,
`find_sweep` and `read_runs` works on plain numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
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
    seeds_needed,
    verdict_table,
)
from lossforge.tracking import check_reachable, redact_uri, resolve_tracking_uri
from lossforge.tracking.runs import ERROR_TAG, OUTCOME_TAG
from lossforge.tracking.store import DEFAULT_STORE, sqlite_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROTOCOL_STAGE = "lossforge.protocol.stage"
"""The tag `lossforge benchmark` puts on its runs: `comparison` (the parent), `study`, `final`."""
SEED = "seed"
"""The parameter a comparison always pools over: runs that differ only in it are one group."""
IGNORED_PARAMS = ("hydra", "run_name", "resume", "verbose", "sweep.", "trainer.enable_progress_bar")
"""Parameters that never tell groups apart: Hydra's bookkeeping, names, and switches that change no result."""
COUNTED = ("finished", "diverged")
"""The outcomes a comparison counts (docs/decisions.md §2): finished runs give values, diverged ones are
reported as "diverged on k of n seeds". Failed and killed runs are listed under the table."""
LEGEND = (
    "± is the sample standard deviation over a group's runs; [low, high] is the 95 % confidence interval "
    "(Student t). ↑: higher is better, ↓: lower is better."
)
DIVERGED_RULE = (
    "A group that diverged on some seeds gets no statistical verdict: its mean and interval are over the seeds "
    'it survived, which flatter it (docs/decisions.md, "Verdicts over runs that did not finish").'
)


def run_outcome(status: str, tags: Mapping[str, str]) -> str:
    """How a run ended: its `lossforge.outcome` tag, else what its MLflow status and `lossforge.error` say.

    Examples:
        >>> run_outcome("FAILED", {"lossforge.outcome": "diverged"}), run_outcome("KILLED", {})
        ('diverged', 'killed')
        >>> run_outcome("FAILED", {"lossforge.error": "NonFiniteLossError: loss is nan at step 3"})
        'diverged'
        >>> run_outcome("FAILED", {}), run_outcome("RUNNING", {})
        ('failed', 'running')
    """
    tagged = tags.get(OUTCOME_TAG)
    if tagged:
        return tagged
    if status == "FAILED":  # runs from before the outcome tag: the guard's error names the divergence
        error = tags.get(ERROR_TAG, "")
        return "diverged" if "NonFinite" in error or "diverg" in error.lower() else "failed"
    return {"FINISHED": "finished", "KILLED": "killed"}.get(status, status.lower())


@dataclass(frozen=True)
class Row:
    """One run of the sweep, as MLflow has it."""

    run_name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    outcome: str = "finished"  # lossforge.outcome (run_outcome): finished, diverged, failed, killed, …
    error: str = ""  # lossforge.error: why it did not finish
    start_time: int = 0  # ms since the epoch: the newest run of a seed counts
    run_id: str = ""
    task: str = ""  # the run's ``task`` tag


def row_of(run: Any) -> Row:
    """A [Row][lossforge.evaluation.compare.Row] from an MLflow `Run`."""
    tags = dict(run.data.tags)
    return Row(
        run_name=run.info.run_name or run.info.run_id,
        status=run.info.status,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        outcome=run_outcome(run.info.status, tags),
        error=tags.get(ERROR_TAG, ""),
        start_time=int(run.info.start_time or 0),
        run_id=run.info.run_id,
        task=tags.get("task", ""),
    )


@dataclass(frozen=True)
class Group:
    """Runs that differ only in the pooled parameters `keys` (the seed); with no `keys`, one run."""

    label: str  # unique in the table: the loss (+ miner), and what else tells the group apart
    loss: str  # loss name (+ "+miner"), what ``--baseline`` matches besides the label
    runs: tuple[Row, ...]  # every run of the group, however it ended
    keys: tuple[str, ...]  # the pooled parameters: their values name a run's seed inside the group

    def seed(self, run: Row) -> str:
        """The run's place in the group: its seed (`0`), the pooled values (`0/1`), or its run name."""
        if not self.keys:
            return run.params.get(SEED, run.run_name)
        return "/".join(run.params.get(key, "") for key in self.keys)

    def kept(self) -> dict[str, Row]:
        """Seed → the newest finished run of that seed: a re-run is not an independent replicate."""
        newest: dict[str, Row] = {}
        for run in sorted(self.runs, key=lambda run: run.start_time):
            if run.outcome == "finished":
                newest[self.seed(run)] = run
        return newest

    def repeats(self) -> dict[str, int]:
        """Seed → how many finished runs it has, where it has more than one."""
        counts: dict[str, int] = {}
        for run in self.runs:
            if run.outcome == "finished":
                counts[self.seed(run)] = counts.get(self.seed(run), 0) + 1
        return {seed: count for seed, count in counts.items() if count > 1}

    def diverged(self) -> list[str]:
        """The seeds whose run diverged (and that have no finished run)."""
        kept = self.kept()
        return sorted({self.seed(run) for run in self.runs if run.outcome == "diverged"} - set(kept))

    @property
    def seeds(self) -> int:
        """How many seeds the group ran to an outcome of the loss: finished or diverged."""
        return len(self.kept()) + len(self.diverged())

    def left_out(self) -> list[Row]:
        """Runs that neither finished nor diverged: failed, killed, still running."""
        return [run for run in self.runs if run.outcome not in COUNTED]

    @property
    def status(self) -> str:
        """`finished`, `k of n seeds diverged`, or how its only runs ended."""
        diverged = len(self.diverged())
        if diverged:
            return f"{diverged} of {self.seeds} seeds diverged"
        if self.kept():
            return "finished"
        return ", ".join(sorted({run.outcome for run in self.runs}))

    def values(self, metric: str) -> dict[str, float]:
        """Seed → the finite value of `metric` in the newest finished run of that seed."""
        values: dict[str, float] = {}
        for seed, run in self.kept().items():
            value = run.metrics.get(metric)
            if value is not None and math.isfinite(value):
                values[seed] = value
        return values

    def missing(self, metric: str) -> list[str]:
        """The seeds whose kept run has no finite value of `metric`."""
        return [seed for seed in self.kept() if seed not in self.values(metric)]


def _ignored(key: str) -> bool:
    return key.startswith(IGNORED_PARAMS)


def varying_params(rows: Sequence[Row]) -> list[str]:
    """Parameter keys whose values differ between rows — the ones that explain the differences.

    ```pycon
    >>> rows = [Row("a", "FINISHED", {"loss.name": "l1", "seed": "0"}, {}),
    ...         Row("b", "FINISHED", {"loss.name": "l2", "seed": "0"}, {})]
    >>> varying_params(rows)
    ['loss.name']

    ```
    """
    keys = sorted({key for row in rows for key in row.params})
    return [key for key in keys if not _ignored(key) and len({row.params.get(key) for row in rows}) > 1]


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


def pooled_keys(mean_over: str | Sequence[str] | None) -> tuple[str, ...]:
    """The parameters a comparison pools over: the seed always, and `mean_over` (comma-separated) too;
    `"none"`: nothing (every run its own row).

    ```pycon
    >>> pooled_keys(None), pooled_keys("dataset.split_seed"), pooled_keys("seed"), pooled_keys("none")
    (('seed',), ('seed', 'dataset.split_seed'), ('seed',), ())

    ```
    """
    names = mean_over.split(",") if isinstance(mean_over, str) else list(mean_over or [])
    names = [name.strip() for name in names if name.strip()]
    if [name.lower() for name in names] == ["none"]:
        return ()
    return tuple(dict.fromkeys([SEED, *names]))


def _short(key: str) -> str:
    """A parameter as a group's name shows it: the loss's own options without `loss.`."""
    return key.removeprefix("loss.")


def group_runs(rows: Sequence[Row], keys: str | Sequence[str] = (SEED,)) -> list[Group]:
    """Groups of rows that differ only in the pooled parameters `keys` (and names and Hydra's
    bookkeeping), in order of first run; without `keys` every run is its own group.

    A group is named by its loss (+ miner) and, where other groups share that, by what tells them apart:
    `focal gamma=0` and `focal gamma=2`.

    Examples:
        >>> rows = [Row("l1-0", "FINISHED", {"loss.name": "l1", "seed": "0"}, {"test/mae": 1.0}),
        ...         Row("l1-1", "FINISHED", {"loss.name": "l1", "seed": "1"}, {"test/mae": 3.0}),
        ...         Row("l2-0", "FINISHED", {"loss.name": "l2", "seed": "0"}, {"test/mae": 2.0})]
        >>> [(group.label, group.values("test/mae")) for group in group_runs(rows)]
        [('l1', {'0': 1.0, '1': 3.0}), ('l2', {'0': 2.0})]
        >>> [group.label for group in group_runs(rows, ())]
        ['l1 seed=0', 'l1 seed=1', 'l2']
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    members: dict[object, list[Row]] = {}
    for number, row in enumerate(rows):
        identity = tuple(sorted((k, v) for k, v in row.params.items() if k not in keys and not _ignored(k)))
        members.setdefault(identity if keys else number, []).append(row)
    runs = [tuple(group) for group in members.values()]
    losses = [loss_label(group[0].params) for group in runs]
    labels = []
    for loss, group in zip(losses, runs, strict=True):
        namesakes = [other[0] for other, name in zip(runs, losses, strict=True) if name == loss]
        telling = [key for key in varying_params(namesakes) if key not in (*keys, "loss.name", "miner.name")]
        details = " ".join(f"{_short(key)}={_param(group[0].params.get(key, ''))}" for key in telling)
        labels.append(f"{loss} {details}" if details else loss)
    return [Group(label, loss, group, keys) for label, loss, group in zip(_unique(labels), losses, runs, strict=True)]


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def default_baselines(rows: Sequence[Row]) -> list[str]:
    """The baseline each task of the runs declares (`TaskSpec.baseline`: `l2` for regression,
    `cross_entropy` for multiclass, …); runs without a `task` tag: every task's, in turn."""
    from lossforge.tasks import SPECS, spec_for

    tasks = dict.fromkeys(row.task for row in rows if row.task)
    specs = [spec_for(task) for task in tasks] if tasks else list(SPECS.values())
    return list(dict.fromkeys(spec.baseline for spec in specs))


def resolve_baseline(
    groups: Sequence[Group], requested: str | None, defaults: Sequence[str] = ("cross_entropy",)
) -> tuple[str | None, str]:
    """The label of the baseline group, and a note when there is none; an unknown name raises
    [ComparisonError][lossforge.evaluation.compare.ComparisonError] with a hint.

    `requested` matches a group's label, else its loss (+ miner) name; `None` picks the task's baseline
    (`defaults`, the first that exactly one group trained); `"none"` turns the comparison off.
    """
    if requested is not None and requested.lower() == "none":
        return None, ""
    for name in [requested] if requested else defaults:
        if any(group.label == name for group in groups):
            return name, ""
        matches = [group.label for group in groups if group.loss == name]
        if len(matches) == 1:
            return matches[0], ""
        if matches and requested is None:
            return None, (
                f"No baseline: {len(matches)} groups trained {name} ({', '.join(matches)}); pick one with "
                "--baseline <group>."
            )
        if matches:
            raise ComparisonError(
                f"--baseline {name} matches {len(matches)} groups: {', '.join(matches)}. Name one by its full label."
            )
    if requested is None:
        return None, (
            f"No baseline: no group trained {' or '.join(defaults)} (the task's baseline); name one with "
            "--baseline <group> for verdicts."
        )
    names = sorted({group.label for group in groups} | {group.loss for group in groups})
    raise ComparisonError(
        f"no group is {requested!r}; groups: {', '.join(g.label for g in groups)}.{did_you_mean(requested, names)}"
    )


def headline_metrics(groups: Sequence[Group], prefix: str = "test/") -> list[str]:
    """Metrics under `prefix` that any counted run has (per-class breakdowns, with a second `/`, left
    out): a run that died early, or lacks one metric, no longer removes a metric for every group."""
    keys = {key for group in groups for run in group.kept().values() for key in run.metrics}
    return sorted(key for key in keys if key.startswith(prefix) and key.count("/") == 1)


def choose_metrics(
    groups: Sequence[Group], requested: Sequence[str] | None, directions: Mapping[str, Direction]
) -> tuple[list[str], list[str]]:
    """The metrics to compare, and a reason for each test metric left out of the default columns.

    Asked-for metrics must exist and be comparable (else [ComparisonError][lossforge.evaluation.compare.ComparisonError]
    says why); by default every `test/*` metric a finished run has whose direction is known — never `test/loss`, a
    different function for every loss.
    """
    available = sorted({key for group in groups for run in group.runs for key in run.metrics})
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
    for metric in headline_metrics(groups):
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


def diverged_verdict(group: Group) -> str:
    """The verdict of a group that diverged on some seeds: no statistical verdict (docs/decisions.md)."""
    return f"diverged on {len(group.diverged())} of {group.seeds} seeds"


def verdict_tables(
    groups: Sequence[Group],
    metrics: Sequence[str],
    *,
    baseline: str | None,
    directions: Mapping[str, Direction] | None = None,
) -> dict[str, list[VerdictRow]]:
    """One [verdict_table][lossforge.evaluation.statistics.verdict_table] per metric (Holm within each
    metric, over the groups judged against the baseline).

    Each group gives the newest finished run of each seed. A group without a value of a metric is left out
    of that metric's table, and so is the comparison when the baseline has none. A group (other than the
    baseline) that diverged on some seeds is summarised over the seeds it survived but not judged: its verdict
    is "diverged on k of n seeds", and it is outside the Holm family.
    """
    tables = {}
    for metric in metrics:
        values = {group.label: group.values(metric) for group in groups}
        values = {label: seeds for label, seeds in values.items() if seeds}
        if not values:
            continue
        judged_against = baseline if baseline in values else None
        diverged = {group.label for group in groups if group.diverged() and group.label != judged_against}
        judged = {label: seeds for label, seeds in values.items() if label not in diverged}
        direction = (directions or {}).get(metric)
        rows = (
            {
                row.group: row
                for row in verdict_table(judged, metric=metric, baseline=judged_against, direction=direction)
            }
            if judged
            else {}
        )
        for group in groups:
            if group.label in diverged and group.label in values:
                (summary,) = verdict_table({group.label: values[group.label]}, metric=metric, direction=direction)
                verdict = diverged_verdict(group) if judged_against else None
                rows[group.label] = dataclasses.replace(summary, baseline=judged_against, verdict=verdict)
        tables[metric] = [rows[label] for label in values]
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


def _clip(
    low: float | None, high: float | None, bounds: tuple[float | None, float | None]
) -> tuple[float | None, float | None, bool]:
    """An interval cut to `bounds`, and whether it was cut.

    ```pycon
    >>> _clip(0.97, 1.02, (0.0, 1.0)), _clip(-1.0, 2.0, (None, None))
    ((0.97, 1.0, True), (-1.0, 2.0, False))

    ```
    """
    if low is None or high is None:
        return low, high, False
    lower, upper = bounds
    clipped_low = low if lower is None else max(low, lower)
    clipped_high = high if upper is None else min(high, upper)
    return clipped_low, clipped_high, (clipped_low, clipped_high) != (low, high)


def _range(bounds: tuple[float | None, float | None]) -> str:
    low, high = bounds
    return f"[{'-∞' if low is None else f'{low:g}'}, {'∞' if high is None else f'{high:g}'}]"


def verdicts_to_markdown(
    rows: Sequence[VerdictRow], *, digits: int = 4, bounds: tuple[float | None, float | None] = (None, None)
) -> str:
    """One metric's verdict table as markdown: n, mean, CI and, against a baseline, difference, p, verdict.

    A group's interval is shown within the metric's `bounds` (an accuracy's t interval can reach past 1),
    marked `*` where it was cut; the p-values and the JSON keep the interval as computed.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
        ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))},
        ...                      metric="test/mae", baseline="l2")
        >>> print(verdicts_to_markdown(rows, digits=2, bounds=(0.0, None)))
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
        low, high, clipped = _clip(row.ci_low, row.ci_high, bounds)
        cells = [row.group, str(row.n), mean, _interval(low, high, digits) + ("*" if clipped else "")]
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


def verdicts_to_json(rows: Sequence[VerdictRow | Mapping[str, Any]], failed: Sequence[Mapping[str, Any]] = ()) -> str:
    """Rows of any metrics as a JSON list of objects (`null` where a number does not exist), then the
    `failed` entries (`{"group", "metric", "n": 0, "verdict": "failed" | "left out" | …, "error", …}`).

    ```pycon
    >>> from lossforge.evaluation.statistics import verdict_table
    >>> rows = json.loads(verdicts_to_json(verdict_table({"a": {0: 1.0}}, metric="test/mae")))
    >>> rows[0]["group"], rows[0]["n"], rows[0]["ci_low"], rows[0]["direction"]
    ('a', 1, None, 'lower')

    ```
    """
    everything = [row.as_dict() if isinstance(row, VerdictRow) else dict(row) for row in rows]
    everything += [dict(row) for row in failed]
    return json.dumps(everything, indent=2, ensure_ascii=False, allow_nan=False)


def overview_table(groups: Sequence[Group], params: Sequence[str], tables: Mapping[str, Sequence[VerdictRow]]) -> str:
    """One line per group: label, how its runs ended, n (seeds), the parameters that differ, `mean ± std`
    per metric."""
    by_group = {metric: {row.group: row for row in rows} for metric, rows in tables.items()}
    merged = any(group.keys for group in groups)
    header = ["group" if merged else "run", "status", *(["n"] if merged else []), *params]
    header += [f"{metric} {ARROWS[rows[0].direction]}" for metric, rows in tables.items() if rows]
    lines = []
    for group in groups:
        cells = [group.label, group.status, *([str(group.seeds)] if merged else [])]
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


def holm_family(rows: Sequence[VerdictRow]) -> str:
    """What a table's p-values were adjusted over, named: `Holm-adjusted over the 2 comparisons against l2
    on test/mae` — only the rows with a test (a group with one run, or one that diverged, is outside).

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> holm_family(verdict_table({"l2": {0: 0.5}, "l1": {0: 0.4}}, metric="test/mae", baseline="l2"))
        'no group had a test against l2 on test/mae, so nothing was Holm-adjusted'
    """
    baseline = next((row.baseline for row in rows if row.baseline), None)
    family = sum(row.p_value is not None and row.group != baseline for row in rows)
    if family == 0:
        return f"no group had a test against {baseline} on {rows[0].metric}, so nothing was Holm-adjusted"
    plural = "s" if family != 1 else ""
    return f"Holm-adjusted over the {family} comparison{plural} against {baseline} on {rows[0].metric}"


def _pairing(rows: Sequence[VerdictRow], baseline: str) -> str:
    judged = [row for row in rows if row.paired is not None]
    paired = {row.paired for row in judged}
    base = next((row for row in rows if row.group == baseline), None)
    partly = [
        f"{row.group} on the {len(set(row.values) & set(base.values))} seeds both ran"
        for row in judged
        if row.paired and base is not None and set(row.values) != set(base.values)
    ]
    if paired == {False}:
        return "unpaired (Welch; the groups share fewer than 2 seeds)"
    text = (
        "paired by seed"
        if paired == {True}
        else "paired by seed where both share 2 seeds or more, else unpaired (Welch)"
    )
    return text + (f" ({'; '.join(partly)})" if partly else "")


def comparison_markdown(
    groups: Sequence[Group],
    params: Sequence[str],
    tables: Mapping[str, Sequence[VerdictRow]],
    *,
    notes: Sequence[str] = (),
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    under: Sequence[str] = (),
) -> str:
    """The whole comparison as markdown: the overview, the legend, notes, a verdict table per metric (the
    intervals within the metric's `bounds`), then what was left out (`under`)."""
    parts = [overview_table(groups, params, tables), LEGEND]
    if any(group.keys for group in groups) and any(row.n == 1 for rows in tables.values() for row in rows):
        parts.append(
            "Groups with n = 1 show a mean without interval or verdict: an interval needs at least 2 runs to "
            "estimate the spread (run several seeds, e.g. `seed=0,1,2`)."
        )
    parts += notes
    for metric, rows in tables.items():
        baseline = next((row.baseline for row in rows if row.baseline), None)
        title = f"### {metric} {ARROWS[rows[0].direction]}" + (f" — against {baseline}" if baseline else "")
        limits = (bounds or {}).get(metric, (None, None))
        parts += [title, verdicts_to_markdown(rows, bounds=limits)]
        if any(_clip(row.ci_low, row.ci_high, limits)[2] for row in rows):
            parts.append(
                f"\\* interval shown within the range of {metric}, {_range(limits)}: the t interval reaches past "
                "it (the JSON keeps it as computed; the tests do not use it)."
            )
        if baseline:
            parts.append(
                f"Difference = group − {baseline}, {_pairing(rows, baseline)}. p: two-sided permutation test (sign "
                f"flips when paired; exact up to {PERMUTATIONS} arrangements), {holm_family(rows)}; verdicts at "
                f"α = {ALPHA:g} (intervals {CONFIDENCE:.0%})."
            )
        if any(row.verdict and row.verdict.startswith("diverged") for row in rows):
            parts.append(DIVERGED_RULE)
    parts += under
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
    logged: bool = False  # whether the tables, the figure and the group metrics went onto the parent run
    baseline: str | None = None  # the baseline group's label
    bounds: dict[str, tuple[float | None, float | None]] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def figure(self) -> Figure | None:
        """Each seed, each group's mean and CI ([verdict_figure][lossforge.evaluation.dashboard.verdict_figure]);
        `None` without a table. Drawn when first asked for: a comparison that is only read draws nothing."""
        return verdict_figure(self.tables) if self.tables else None

    @property
    def rows(self) -> list[VerdictRow]:
        """Every verdict row, metric by metric."""
        return [row for rows in self.tables.values() for row in rows]

    def left_out(self) -> list[tuple[Group, Row]]:
        """The runs outside the statistics — failed, killed, still running — with their group."""
        return [(group, run) for group in self.groups for run in group.left_out()]

    def under_table(self) -> list[str]:
        """The lines under the tables: every run left out of the statistics, its outcome and error."""
        left = self.left_out()
        if not left:
            return []
        lines = [f"Left out of the statistics ({len(left)} run{'s' if len(left) != 1 else ''}, by outcome):"]
        for group, run in left:
            error = " ".join(run.error.split())[:200] or "no error recorded"
            lines.append(f"- {group.label}, seed {group.seed(run)} (run {run.run_name}): {run.outcome} — {error}")
        return ["\n".join(lines)]

    def json_rows(self) -> list[dict[str, Any]]:
        """The verdict rows with each group's seeds, the seeds that diverged and the runs that lack the
        metric; then the protocol's failed entries and every run left out, one object each."""
        by_label = {group.label: group for group in self.groups}
        rows: list[dict[str, Any]] = []
        for row in self.rows:
            group = by_label[row.group]
            missing = group.missing(row.metric)
            rows.append(
                {**row.as_dict(), "seeds": group.seeds, "diverged": len(group.diverged()), "missing": len(missing)}
            )
        rows += [dict(entry) for entry in self.failed]
        for group, run in self.left_out():
            rows.append(
                {
                    "group": group.label,
                    "metric": None,
                    "n": 0,
                    "verdict": "left out",
                    "outcome": run.outcome,
                    "error": run.error,
                    "run": run.run_name,
                    "run_id": run.run_id,
                    "seed": group.seed(run),
                }
            )
        return rows

    def to_markdown(self) -> str:
        """The whole comparison as markdown
        ([comparison_markdown][lossforge.evaluation.compare.comparison_markdown])."""
        return comparison_markdown(
            self.groups, self.params, self.tables, notes=self.notes, bounds=self.bounds, under=self.under_table()
        )

    def to_text(self) -> str:
        """A line naming the sweep, then the markdown: what `lossforge compare` prints by default."""
        return f"{self.kind} {self.run_id} ({self.overrides}): {self.summary}\n\n{self.to_markdown()}"

    def to_csv(self) -> str:
        """The verdict rows as CSV ([verdicts_to_csv][lossforge.evaluation.compare.verdicts_to_csv])."""
        return verdicts_to_csv(self.rows)

    def to_json(self) -> str:
        """The rows of [json_rows][lossforge.evaluation.compare.ComparisonReport.json_rows] as JSON."""
        return verdicts_to_json(self.json_rows())

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

    def seeds_for_a_verdict(self) -> int | None:
        """The paired seeds every group needs for a verdict to be possible against the baseline
        ([seeds_needed][lossforge.evaluation.statistics.seeds_needed] for one comparison per other group);
        `None` without a baseline or another group."""
        comparisons = sum(group.label != self.baseline for group in self.groups)
        if self.baseline is None or comparisons == 0:
            return None
        return seeds_needed(comparisons)

    def footer(self, plot: Path | None) -> list[str]:
        """The lines `lossforge compare` prints after the tables: where the plot went, what was logged."""
        lines = [f"Plot: {plot}"] if plot is not None else []
        if self.logged:
            logged = f"{', '.join(ARTIFACTS)}, group metrics"
            lines.append(f"Logged to the {self.kind.lower()}'s MLflow run {self.run_id}: {logged}")
        return lines


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


def _check_pooled(rows: Sequence[Row], mean_over: str | Sequence[str] | None, keys: Sequence[str]) -> None:
    """A parameter the user named to pool over must exist: a misspelt one is an error with a suggestion."""
    named = [key for key in keys if key != SEED or (mean_over and SEED in str(mean_over))]
    names = sorted({key for row in rows for key in row.params if not key.startswith("hydra")})
    for key in named:
        if not any(key in row.params for row in rows):
            raise ComparisonError(
                f"--mean-over {key}: no run has a parameter {key!r}.{did_you_mean(key, names)} "
                f"Parameters that differ between the runs: {', '.join(varying_params(rows)) or 'none'}."
            )


def _notes(groups: Sequence[Group], tables: Mapping[str, Sequence[VerdictRow]], baseline: str | None) -> list[str]:
    """What a reader must know about the runs behind the numbers: re-runs, missing metrics, divergence."""
    notes = []
    repeats = [
        f"{group.label} seed {seed} ran {count} times" for group in groups for seed, count in group.repeats().items()
    ]
    if repeats:
        notes.append(
            f"Re-runs: {'; '.join(repeats)}. Only the newest finished run of each seed counts: runs of one seed "
            "are not independent replicates (pseudo-replication)."
        )
    for metric in tables:
        lacking = [f"{group.label} seed {seed}" for group in groups for seed in group.missing(metric)]
        if lacking:
            counted = sum(len(group.kept()) for group in groups)
            notes.append(
                f"{metric}: {len(lacking)} of {counted} finished runs lack it ({', '.join(lacking)}); each group uses "
                "the runs that have it, paired with the baseline on the seeds both have."
            )
    for group in groups:
        if group.diverged() and not group.kept():
            notes.append(f"{group.label}: diverged on {len(group.diverged())} of {group.seeds} seeds — no values.")
        elif group.diverged() and group.label == baseline:
            notes.append(
                f"The baseline {baseline} diverged on {len(group.diverged())} of {group.seeds} seeds: the verdicts "
                "against it use the seeds where it finished."
            )
    return notes


def compare(
    run_id: str | None = None,
    *,
    tracking_uri: str | None = None,
    experiment: str = "lossforge",
    metrics: Sequence[str] | None = None,
    mean_over: str | Sequence[str] | None = None,
    baseline: str | None = None,
    directions: Mapping[str, Direction] | None = None,
    log: bool = False,
    base_dir: Path | None = None,
) -> ComparisonReport:
    """Compare the runs of the sweep `run_id` (default: the experiment's latest) — or of a `lossforge
    benchmark` comparison, whose seed runs are read through its studies. Reads only, unless `log`.

    Which runs count (docs/decisions.md §2): the newest finished run of each seed of a group; a group that
    diverged on some seeds is reported "diverged on k of n seeds" without a statistical verdict; failed and
    killed runs are listed under the tables; superseded runs never count.

    Args:
        run_id: the sweep's (or comparison's) parent run; `None`: the experiment's most recent sweep.
        tracking_uri: the MLflow store (default: `$MLFLOW_TRACKING_URI`, else `outputs/mlflow.db` under
            `base_dir`).
        experiment: the MLflow experiment's name.
        metrics: the metrics to compare (default: every comparable `test/*` metric a finished run has).
        mean_over: parameters to pool over besides the seed (comma-separated, or a list); `"none"`: every
            run its own row.
        baseline: the group the others are judged against (a loss name or a full group label; `"none"`
            for no verdicts); default: the task's baseline (`TaskSpec.baseline`) where one group trained it.
        directions: `{"higher"|"lower"}` per metric whose direction lossforge does not know.
        log: write the tables, the figure and each group's mean and CI onto the parent run
            ([log_comparison][lossforge.evaluation.dashboard.log_comparison]); by default nothing is written.
        base_dir: where a relative store is (default: the current directory).

    Raises:
        ComparisonError: when the comparison cannot be made as asked; the message says why.
    """
    from lossforge.tasks import spec_for
    from lossforge.tasks.base import TaskSpec

    directions = dict(directions or {})
    client = open_store(tracking_uri, base_dir)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ComparisonError(f"no MLflow experiment named {experiment!r} in {redact_uri(client.tracking_uri)}")
    parent = find_sweep(client, found.experiment_id, run_id)
    rows, failed_groups, protocol = read_runs(client, parent)
    if not rows:
        raise ComparisonError(f"the run {parent.info.run_id} has no child runs; is it a sweep's parent?")
    if protocol:
        baseline = baseline or parent.data.params.get("baseline")
    keys = pooled_keys(mean_over)
    _check_pooled(rows, mean_over, keys)
    groups = group_runs(rows, keys)
    chosen, left_out = choose_metrics(groups, list(metrics) if metrics else None, directions)
    if protocol and parent.data.tags.get("lossforge.protocol.metric") in chosen:
        selection = parent.data.tags["lossforge.protocol.metric"]
        chosen = [selection, *(metric for metric in chosen if metric != selection)]  # what decided, first
    if keys:
        baseline_label, baseline_note = resolve_baseline(groups, baseline, default_baselines(rows))
    else:  # single runs: a listing, judged only against a baseline asked for
        baseline_label, baseline_note = resolve_baseline(groups, baseline or "none")
        baseline_note = "Every run is its own row (--mean-over none); without --mean-over, the seeds are pooled."
    if baseline_label:
        groups = sorted(groups, key=lambda group: group.label != baseline_label)  # the baseline first
    try:
        tables = verdict_tables(groups, chosen, baseline=baseline_label, directions=directions)
    except (NotComparableError, ValueError) as error:
        raise ComparisonError(str(error)) from None
    params = [key for key in varying_params(rows) if key not in keys]
    notes = [note for note in [baseline_note] if note]
    notes += [f"Failed: {row['group']} — {row['error']}" for row in failed_groups]
    if left_out:
        notes.append("Left out: " + "; ".join(left_out) + ".")
    notes += _notes(groups, tables, baseline_label)
    tasks = {row.task for row in rows if row.task}
    spec = spec_for(tasks.pop()) if len(tasks) == 1 else TaskSpec()
    pooled = f", mean over {', '.join(keys)}" if keys else ""
    summary = f"{len(groups)} groups from {len(rows)} runs{pooled}" if keys else f"{len(rows)} runs"
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
        logged=log,
        baseline=baseline_label,
        bounds={metric: spec.bounds(metric) for metric in tables},
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


def _without_dataset(row: Row) -> Row:
    """A run without its dataset's parameters: across datasets, a group is the same loss configuration."""
    params = {key: value for key, value in row.params.items() if not key.startswith("dataset.")}
    return dataclasses.replace(row, params=params)


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
    """Each run of `run_ids` (a sweep or a comparison on one dataset) gives each group (a loss
    configuration: `focal gamma=0.5` and `focal gamma=2` apart) its mean `metric` over the newest finished
    run of each seed; the groups all runs share are ranked per dataset and compared by Friedman's test with the
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
        rows = [row for row in map(row_of, children) if row.outcome != "superseded"]
        dataset = str(parent.data.tags.get("dataset") or next((row.params.get("dataset.name") for row in rows), run_id))
        label = dataset if dataset not in {name for values in scores.values() for name in values} else run_id
        # Keyed by the group (focal gamma=0.5 and focal gamma=2 are two contestants), named without the dataset.
        for group in group_runs([_without_dataset(row) for row in rows]):
            values = group.values(metric)
            if values:
                scores.setdefault(group.label, {})[label] = sum(values.values()) / len(values)
    datasets = {name for values in scores.values() for name in values}
    shared = {loss: values for loss, values in scores.items() if set(values) == datasets}
    try:
        result = friedman_nemenyi(shared, metric=metric, direction=(directions or {}).get(metric))
    except ValueError as error:
        raise ComparisonError(str(error)) from None
    figure = critical_difference_figure(result, title=f"{metric}: average rank over {result.n_datasets} datasets")
    return AcrossReport(metric, result, tuple(sorted(datasets)), tuple(sorted(set(scores) - set(shared))), figure)
