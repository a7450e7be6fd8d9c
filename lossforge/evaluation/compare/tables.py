"""A comparison rendered: plain numbers in, text out — the overview, each metric's verdict table as markdown,
the rows as CSV and JSON, and the notes under the tables (the pairing, Holm's family, intervals cut to a
metric's range).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lossforge.evaluation.compare.groups import Group, _param
from lossforge.evaluation.dashboard.who_won import ARROWS
from lossforge.evaluation.statistics.difference import ALPHA, PERMUTATIONS
from lossforge.evaluation.statistics.summary import CONFIDENCE
from lossforge.evaluation.statistics.verdicts import VerdictRow

LEGEND = (
    "± is the sample standard deviation over a group's runs; [low, high] is the 95 % confidence interval "
    "(Student t). ↑: higher is better, ↓: lower is better."
)
DIVERGED_RULE = (
    "A group that diverged on some seeds gets no statistical verdict: its mean and interval are over the seeds "
    'it survived, which flatter it (docs/decisions.md, "Verdicts over runs that did not finish").'
)


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
