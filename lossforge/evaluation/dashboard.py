"""What a comparison leaves on the dashboard: who won, where MLflow shows it first.

A reviewer opens the parent run of a sweep (the page `lossforge ui` prints) and must see who won without
reading numbers. MLflow 3 shows a run's page in this order — the description (the tag `mlflow.note.content`,
markdown), its metrics, its tags — so [log_comparison][lossforge.evaluation.dashboard.log_comparison] writes:

- the **description**: a heading naming the winner, one line per metric (winner, difference to the baseline
  with its 95 % CI, Holm-adjusted p), each group's mean per metric, and the comparison figure
  (see [description][lossforge.evaluation.dashboard.description]). A later `--log` replaces it; what a person
  wrote below its last line is kept;
- **tags** the runs table can show as columns: `lossforge.winner`, `lossforge.baseline` and one
  `lossforge.verdict.<metric>` per metric (stale ones are deleted); on every child run `lossforge.group`
  (the runs table can group by it) and `lossforge.verdict` (its group's verdicts);
- **metrics** with short names that sort by group: `<group>/<metric>` (the mean), `…/ci_low`, `…/ci_high`,
  rounded for display ([group_metrics][lossforge.evaluation.dashboard.group_metrics]); the same names on
  every log, so a later one overwrites them;
- the **artifacts** listed in `ARTIFACTS`: the full tables and the figure.

The winner of a metric ([winners][lossforge.evaluation.dashboard.winners]) is the best group that is
significantly better than the baseline (verdict `better` after Holm's correction); where none is, the
metric has "no significant difference" (or says why there is no verdict at all).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lossforge.evaluation.statistics.verdicts import BETTER, NO_DIFFERENCE, WORSE, VerdictRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ARROWS = {"higher": "↑", "lower": "↓"}
ARTIFACTS = {  # artifact path on the parent run → what it holds
    "comparison/table.md": "the tables below, as markdown",
    "comparison/table.csv": "one row per group and metric: n, mean, std, CI, difference, p, verdict",
    "comparison/table.json": "the same rows as JSON, with each seed's value",
    "comparison/plot.png": "each seed as a dot, the mean with its 95 % CI",
}
PLOT = "comparison/plot.png"
DESCRIPTION_TAG = "mlflow.note.content"
"""The MLflow tag whose markdown the run page shows first, as the run's description."""
WINNER_TAG = "lossforge.winner"
BASELINE_TAG = "lossforge.baseline"
VERDICT_TAG = "lossforge.verdict"  # on the parent: `lossforge.verdict.<metric>`; on a child: its group's verdicts
GROUP_TAG = "lossforge.group"
NO_SIGNIFICANT_DIFFERENCE = "no significant difference"
DESCRIPTION_END = "*Written by `lossforge compare --log`; the next log replaces all above this line, not below.*"
"""The description's last line: what a later `--log` replaces ends here, and what a person wrote below it stays."""
MAX_DESCRIPTION = 8000
"""The longest tag value MLflow stores (`mlflow.utils.validation.MAX_TAG_VAL_LENGTH`), the description included."""
MIN_RELATIVE_SPAN = 0.05
"""A panel's y-axis spans at least this fraction of its largest absolute value: a 0.0009 difference between
accuracies of 0.95 must not fill the panel as if it were a cliff."""


# -- who won: plain rows in, plain answers out --------------------------------------------------------------


@dataclass(frozen=True)
class Winner:
    """The answer for one metric: the winning group, or why there is none."""

    metric: str
    direction: str  # "higher" | "lower"
    baseline: str | None
    group: str | None  # the winner; None when no group won
    row: VerdictRow | None  # the winner's row
    reason: str  # why there is no winner ("" when there is one)

    @property
    def text(self) -> str:
        """The winner's name, or the reason there is none."""
        return self.group or self.reason


def winners(tables: Mapping[str, Sequence[VerdictRow]]) -> list[Winner]:
    """Per metric: the best group that is significantly better than the baseline (verdict `better`).

    Where every other group is significantly *worse*, the baseline wins. Otherwise there is no winner and
    the reason says why: `no significant difference`, no baseline, or too few runs for any verdict.

    Args:
        tables: metric → its verdict rows (as [verdict_table][lossforge.evaluation.statistics.verdicts.verdict_table]
            returns them).

    Returns:
        One [Winner][lossforge.evaluation.dashboard.Winner] per metric, in the order of `tables`.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
        ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))},
        ...                      metric="test/mae", baseline="l2")
        >>> [(winner.metric, winner.text) for winner in winners({"test/mae": rows})]
        [('test/mae', 'l1')]
        >>> winners({"test/mae": verdict_table({"l1": {0: 0.2}}, metric="test/mae")})[0].text
        'no baseline to compare with'
    """
    answers = []
    for metric, rows in tables.items():
        direction = rows[0].direction if rows else "higher"
        baseline = next((row.baseline for row in rows if row.baseline), None)
        judged = [row for row in rows if row.verdict is not None]
        better = [row for row in judged if row.verdict == BETTER]
        if better:
            best = (max if direction == "higher" else min)(better, key=lambda row: row.mean)
            answers.append(Winner(metric, direction, baseline, best.group, best, ""))
        elif judged and all(row.verdict == WORSE for row in judged):
            kept = next(row for row in rows if row.group == baseline)
            answers.append(Winner(metric, direction, baseline, kept.group, kept, ""))
        else:
            reason = NO_SIGNIFICANT_DIFFERENCE
            if baseline is None:
                reason = "no baseline to compare with"
            elif not judged:
                reason = "no other group to compare with"
            elif all((row.verdict or "").startswith("too few") for row in judged):
                reason = str(judged[0].verdict)
            elif not any(row.verdict in (NO_DIFFERENCE, WORSE) for row in judged):  # e.g. every other diverged
                reason = "no group significantly better than the baseline"
            answers.append(Winner(metric, direction, baseline, None, None, reason))
    return answers


def winner_tag(found: Sequence[Winner]) -> str:
    """The value of `lossforge.winner`: the one winner, else each metric's answer.

    Examples:
        >>> ok = Winner("test/mae", "lower", "l2", "l1", None, "")
        >>> winner_tag([ok]), winner_tag([ok, Winner("test/rmse", "lower", "l2", None, None, "no verdict")])
        ('l1', 'l1 (test/mae); no verdict (test/rmse)')
    """
    names = {winner.text for winner in found}
    if len(names) == 1:
        return names.pop()
    return "; ".join(f"{winner.text} ({winner.metric})" for winner in found)


def decimals(rows: Sequence[VerdictRow]) -> int:
    """Decimals that show one metric's numbers sensibly: its smallest spread (a CI's half-width or a standard
    deviation) to two significant digits, and at least four significant digits of its largest mean.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> decimals(verdict_table({"a": {0: 0.951, 1: 0.953, 2: 0.952}}, metric="test/accuracy"))
        4
        >>> decimals(verdict_table({"a": {0: 1234.5}}, metric="test/mae"))
        0
    """
    spreads = [row.std for row in rows if row.std] + [
        (row.ci_high - row.ci_low) / 2 for row in rows if row.ci_low is not None and row.ci_high is not None
    ]
    spreads = [spread for spread in spreads if spread > 0 and math.isfinite(spread)]
    largest = max((abs(row.mean) for row in rows if math.isfinite(row.mean)), default=0.0)
    wanted = [3 - math.floor(math.log10(largest))] if largest > 0 else [4]
    if spreads:
        wanted.append(1 - math.floor(math.log10(min(spreads))))
    return min(max(max(wanted), 0), 12)


def _fixed(value: float | None, places: int, *, sign: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{places}f}" if sign else f"{value:.{places}f}"


def difference(row: VerdictRow, places: int) -> str:
    """The row's difference to the baseline with its 95 % CI, signed: `+0.0514 [+0.0506, +0.0521]`."""
    low, high = _fixed(row.difference_ci_low, places, sign=True), _fixed(row.difference_ci_high, places, sign=True)
    return f"{_fixed(row.difference, places, sign=True)} [{low}, {high}]"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.2g}"


# -- the description: what the run page opens on -------------------------------------------------------------


def description(
    *,
    run_id: str,
    summary: str,
    tables: Mapping[str, Sequence[VerdictRow]],
    plot: bool,
    previous: str = "",
    max_length: int = MAX_DESCRIPTION,
) -> str:
    """The parent run's description (markdown): who won, one line per metric, each group's means, the figure.

    Args:
        run_id: the parent run (the figure is linked from its artifacts).
        summary: what was compared, e.g. `3 groups from 9 runs, mean over seed`.
        tables: metric → its verdict rows.
        plot: whether `comparison/plot.png` was logged (and is shown).
        previous: the description the run has now: what a person wrote below
            `DESCRIPTION_END` is kept; an earlier comparison's text is replaced.
        max_length: the longest text MLflow takes as a tag's value: a description that would be longer leaves
            out the group table (it stays in `comparison/table.md`), then cuts the person's note.

    Returns:
        Markdown that MLflow renders on the run page.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
        ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))},
        ...                      metric="test/mae", baseline="l2")
        >>> print(description(run_id="abc", summary="2 groups", tables={"test/mae": rows}, plot=True))
        ## Winner: l1
        <BLANKLINE>
        | metric | winner | difference to l2 [95 % CI] | p (Holm) |
        |---|---|---|---|
        | test/mae ↓ | **l1** | -1.950 [-2.060, -1.840] | 0.031 |
        <BLANKLINE>
        | group | n | test/mae ↓ |
        |---|---|---|
        | l2 (baseline) | 6 | 2.150 [2.040, 2.260] |
        | **l1** (winner) | 6 | **0.200** [0.106, 0.294] better |
        <BLANKLINE>
        2 groups; 95 % confidence intervals; verdicts: permutation tests against the baseline, Holm-adjusted
        per metric (α = 0.05). Full tables: `comparison/table.md` (Artifacts tab) or `lossforge compare abc`.
        <BLANKLINE>
        ![comparison: each seed, each group's mean and 95 % CI](get-artifact?path=comparison/plot.png&run_uuid=abc)
        <BLANKLINE>
        *Written by `lossforge compare --log`; the next log replaces all above this line, not below.*
        <BLANKLINE>
    """
    from lossforge.evaluation.statistics.difference import ALPHA

    found = winners(tables)
    baselines = {winner.baseline for winner in found if winner.baseline}
    parts = [headline(found)]
    if baselines:
        against = next(iter(baselines)) if len(baselines) == 1 else "the baseline"
        lines = []
        for winner in found:
            places = decimals(tables[winner.metric])
            row = winner.row
            if row is not None and row.group != winner.baseline:
                cells = [f"**{row.group}**", difference(row, places)]
                cells.append(_p(row.p_adjusted))
            elif row is not None:  # the baseline, every other group worse
                cells = [f"**{row.group}** (the baseline; every other group worse)", "", ""]
            else:
                cells = [winner.reason, "", ""]
            lines.append([f"{winner.metric} {ARROWS[winner.direction]}", *cells])
        parts.append(_markdown(["metric", "winner", f"difference to {against} [95 % CI]", "p (Holm)"], lines))
    parts.append(group_table(tables, found))
    if sum(len(part) + 2 for part in parts) + len(previous) + 1000 > max_length:  # the rest stays under 1000
        parts[-1] = (
            f"(The table of every group is in `comparison/table.md`: {len(parts[-1])} characters more than fit.)"
        )
    method = f"; verdicts: permutation tests against the baseline, Holm-adjusted\nper metric (α = {ALPHA:g})"
    parts.append(
        f"{summary}; 95 % confidence intervals{method if baselines else ''}. Full tables: `comparison/table.md` "
        f"(Artifacts tab) or `lossforge compare {run_id}`."
    )
    if plot:  # a relative link: MLflow's own artifact endpoint, under whatever prefix the dashboard is served
        figure = f"get-artifact?path={PLOT}&run_uuid={run_id}"
        parts.append(f"![comparison: each seed, each group's mean and 95 % CI]({figure})")
    parts.append(DESCRIPTION_END)
    kept = previous.split(DESCRIPTION_END, 1)[1].strip() if DESCRIPTION_END in previous else previous.strip()
    text = "\n\n".join(parts) + "\n"
    return text + (f"\n{kept}\n" if kept else "")[: max(max_length - len(text), 0)]


def headline(found: Sequence[Winner]) -> str:
    """The description's first line: the winner, else the metrics' answers.

    Examples:
        >>> headline([Winner("test/mae", "lower", "l2", None, None, "no significant difference")])
        '## No significant difference from the baseline l2'
    """
    named = [winner for winner in found if winner.group]
    if named and len({winner.group for winner in named}) == 1 and len(named) == len(found):
        return f"## Winner: {named[0].group}"
    if named:
        return "## Winners: " + "; ".join(f"{winner.group} on {winner.metric}" for winner in named)
    reasons = {winner.reason for winner in found}
    baselines = {winner.baseline for winner in found if winner.baseline}
    if reasons == {NO_SIGNIFICANT_DIFFERENCE} and len(baselines) == 1:
        return f"## No significant difference from the baseline {baselines.pop()}"
    return "## No winner: " + "; ".join(sorted(reasons))


def group_table(tables: Mapping[str, Sequence[VerdictRow]], found: Sequence[Winner]) -> str:
    """One line per group: n and, per metric, its mean with 95 % CI and its verdict; the winner in bold."""
    won = {(winner.metric, winner.group) for winner in found if winner.group}
    groups: dict[str, dict[str, VerdictRow]] = {}
    for metric, rows in tables.items():
        for each in rows:
            groups.setdefault(each.group, {})[metric] = each
    baselines = {each.baseline for rows in tables.values() for each in rows if each.baseline}
    header = ["group", "n"] + [f"{metric} {ARROWS[rows[0].direction]}" for metric, rows in tables.items() if rows]
    lines = []
    for group, by_metric in groups.items():
        wins = any((metric, group) in won for metric in by_metric)
        name = f"**{group}** (winner)" if wins else group
        if group in baselines:
            name += " (baseline)"
        counts = sorted({each.n for each in by_metric.values()})
        cells = [name, "/".join(str(n) for n in counts)]
        for metric in tables:
            row = by_metric.get(metric)
            if row is None:
                cells.append("—")
                continue
            places = decimals(tables[metric])
            mean = _fixed(row.mean, places)
            cell = f"**{mean}**" if (metric, group) in won else mean
            if row.ci_low is not None and row.ci_high is not None:
                cell += f" [{_fixed(row.ci_low, places)}, {_fixed(row.ci_high, places)}]"
            if row.verdict and not row.verdict.startswith("too few"):  # that one is said once, per metric
                cell += f" {row.verdict}"
            cells.append(cell)
        lines.append(cells)
    return _markdown(header, lines)


def _markdown(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in lines]
    return "\n".join(rows)


# -- tags and metrics ----------------------------------------------------------------------------------------


def verdict_tags(tables: Mapping[str, Sequence[VerdictRow]]) -> dict[str, str]:
    """The parent run's tags: `lossforge.winner`, `lossforge.baseline`, and `lossforge.verdict.<metric>`.

    Tags are strings, so their numbers are formatted for reading (unlike metrics, which MLflow prints in
    full); the runs table can show each as a column.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
        ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))},
        ...                      metric="test/mae", baseline="l2")
        >>> for key, value in verdict_tags({"test/mae": rows}).items():
        ...     print(f"{key}: {value}")
        lossforge.winner: l1
        lossforge.verdict.test/mae: l1 better than l2: -1.950 [-2.060, -1.840], p (Holm) 0.031
        lossforge.baseline: l2
    """
    found = winners(tables)
    tags = {WINNER_TAG: winner_tag(found)}
    for winner in found:
        row, places = winner.row, decimals(tables[winner.metric])
        if row is not None and row.group != winner.baseline:
            text = (
                f"{row.group} better than {winner.baseline}: {difference(row, places)}, p (Holm) {_p(row.p_adjusted)}"
            )
        elif row is not None:
            text = f"{row.group} (the baseline): every other group worse"
        else:
            text = winner.reason
        tags[f"{VERDICT_TAG}.{winner.metric}"] = text
    baselines = sorted({winner.baseline for winner in found if winner.baseline})
    if baselines:
        tags[BASELINE_TAG] = ", ".join(baselines)
    return tags


def child_verdicts(tables: Mapping[str, Sequence[VerdictRow]]) -> dict[str, str]:
    """Group → the value of its runs' `lossforge.verdict` tag: `winner`, `baseline` or its verdict, per metric.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
        ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))},
        ...                      metric="test/mae", baseline="l2")
        >>> child_verdicts({"test/mae": rows})
        {'l2': 'test/mae: baseline', 'l1': 'test/mae: winner'}
    """
    won = {(winner.metric, winner.group) for winner in winners(tables) if winner.group}
    verdicts: dict[str, list[str]] = {}
    for metric, rows in tables.items():
        baseline = next((row.baseline for row in rows if row.baseline), None)
        for row in rows:
            if (metric, row.group) in won:
                verdict = "winner"
            elif row.group == baseline:
                verdict = "baseline"
            else:
                verdict = row.verdict or f"n = {row.n}, no verdict"
            verdicts.setdefault(row.group, []).append(f"{metric}: {verdict}")
    return {group: "; ".join(parts) for group, parts in verdicts.items()}


def group_metrics(tables: Mapping[str, Sequence[VerdictRow]]) -> dict[str, float]:
    """`<group>/<metric>` (the mean), `<group>/<metric>/ci_low` and `…/ci_high`: names that sort by group and
    stay the same on every log, so a later one overwrites them. Values are rounded as the description shows
    them ([decimals][lossforge.evaluation.dashboard.decimals]); each seed's exact value is in
    `comparison/table.json`.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> group_metrics({"test/mae": verdict_table({"huber (loss.delta=2)": {0: 0.5}}, metric="test/mae")})
        {'huber_loss.delta_2/test/mae': 0.5}
        >>> group_metrics({"test/accuracy": verdict_table({"focal": {0: 0.95123456, 1: 0.95234567}},
        ...                                               metric="test/accuracy")})
        {'focal/test/accuracy': 0.95179, 'focal/test/accuracy/ci_low': 0.94473, 'focal/test/accuracy/ci_high': 0.95885}
    """
    places = {metric: decimals(rows) for metric, rows in tables.items()}
    by_group: dict[str, list[VerdictRow]] = {}
    for rows in tables.values():
        for row in rows:
            by_group.setdefault(row.group, []).append(row)
    logged = {}  # in the order the run page lists them: group by group, each metric's mean and then its CI
    for group, rows in by_group.items():
        for row in rows:
            name = f"{mlflow_name(group)}/{row.metric}"
            for suffix, value in (("", row.mean), ("/ci_low", row.ci_low), ("/ci_high", row.ci_high)):
                if value is not None and math.isfinite(value):
                    logged[name + suffix] = round(value, places[row.metric])
    return logged


def mlflow_name(label: str) -> str:
    """`label` with what MLflow refuses in a metric name (and `/`, its nesting) replaced by `_`.

    Examples:
        >>> mlflow_name("focal (loss.gamma=2.0)"), mlflow_name("triplet+semihard_triplets")
        ('focal_loss.gamma_2.0', 'triplet_semihard_triplets')
    """
    return re.sub(r"\s*[^\w.\- ]+\s*", "_", label).strip(" ._") or "group"


# -- the figure ----------------------------------------------------------------------------------------------


def verdict_figure(tables: Mapping[str, Sequence[VerdictRow]]) -> Figure:
    """A panel per metric: each group's runs, its mean (with its 95 % CI where it has one), the baseline in
    black with its mean as a dashed line, and every verdict under its group's name.

    The legend names only what is drawn (with one run per group: no seed dots, no intervals), and a panel's
    y-axis spans at least `MIN_RELATIVE_SPAN` of its largest value
    ([y_limits][lossforge.evaluation.dashboard.y_limits]), its range written in the axis label.
    """
    from matplotlib.figure import Figure

    metrics = list(tables)
    widest = max((len(rows) for rows in tables.values()), default=1)
    figure = Figure(figsize=(max(3.2, 0.9 + 0.75 * widest) * len(metrics), 4.2))
    panels = figure.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    drawn: set[str] = set()
    for axes, metric in zip(panels, metrics, strict=False):
        drawn |= _panel(axes, metric, tables[metric])
    legend = {
        "seeds": "dots: each seed",
        "ci": "◆: mean with 95 % CI",
        "mean": "◆: each group's one run" if drawn.isdisjoint({"seeds", "ci"}) else "◆ without bars: one run",
        "baseline": "dashed: the baseline's mean",
    }
    figure.suptitle(" · ".join(text for key, text in legend.items() if key in drawn), fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    return figure


def _panel(axes: Axes, metric: str, rows: Sequence[VerdictRow]) -> set[str]:
    """Draw one metric's rows; return what was drawn (`seeds`, `ci`, `mean`, `baseline`) for the legend."""
    drawn = set()
    baseline = next((row.baseline for row in rows if row.baseline), None)
    shown: list[float] = []
    for index, row in enumerate(rows):
        colour = "black" if row.group == baseline else f"C{index % 10}"
        seeds = list(row.values.values())
        if len(seeds) > 1:
            spread = [index - 0.15 + 0.3 * i / (len(seeds) - 1) for i in range(len(seeds))]
            axes.scatter(spread, seeds, s=14, color=colour, alpha=0.45, linewidths=0)
            shown += seeds
            drawn.add("seeds")
        if row.ci_low is not None and row.ci_high is not None:
            error = [[row.mean - row.ci_low], [row.ci_high - row.mean]]
            axes.errorbar([index], [row.mean], yerr=error, fmt="D", color=colour, capsize=5, markersize=6)
            shown += [row.ci_low, row.ci_high]
            drawn.add("ci")
        else:
            axes.plot([index], [row.mean], "D", color=colour, markersize=6)
            drawn.add("mean")
        shown.append(row.mean)
        if row.group == baseline:
            axes.axhline(row.mean, color="black", linestyle="--", linewidth=0.8)
            drawn.add("baseline")
    labels = [_figure_label(row, baseline) for row in rows]
    axes.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=7)
    axes.set_xlim(-0.6, len(rows) - 0.4)
    low, high = y_limits(shown)
    axes.set_ylim(low, high)
    axes.set_ylabel(f"axis from {low:.4g} to {high:.4g}", fontsize=7)
    direction = rows[0].direction if rows else "higher"
    axes.set_title(f"{metric} {ARROWS[direction]}", fontsize=9)
    axes.tick_params(axis="y", labelsize=7)
    return drawn


def y_limits(values: Sequence[float], *, min_relative_span: float = MIN_RELATIVE_SPAN) -> tuple[float, float]:
    """The y-range of a panel showing `values`: 10 % margins, at least `min_relative_span` × the largest
    absolute value wide (centred on the data), and not below 0 when no value is.

    Examples:
        >>> [round(limit, 4) for limit in y_limits([0.9500, 0.9509])]  # a 0.0009 difference stays small
        [0.9267, 0.9742]
        >>> y_limits([0.0002, 0.01])  # no value below 0: neither is the axis
        (0.0, 0.01098)
        >>> [round(limit, 4) for limit in y_limits([2.0, 6.0])]
        [1.6, 6.4]
    """
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    margin = 0.1 * (high - low)
    low, high = low - margin, high + margin
    span = max(min_relative_span * max(abs(low), abs(high)), high - low) or 1.0
    middle = (low + high) / 2
    low, high = middle - span / 2, middle + span / 2
    if min(finite) >= 0 > low:
        low = 0.0
    return low, high


def _figure_label(row: VerdictRow, baseline: str | None) -> str:
    if row.group == baseline:
        return f"{row.group}\n(baseline)"
    if row.verdict is None:
        return row.group
    short = "too few runs" if row.verdict.startswith("too few") else row.verdict  # a tick label stays short
    return f"{row.group}\n{short}"


# -- onto the parent run -------------------------------------------------------------------------------------
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
    """What [log_comparison][lossforge.evaluation.dashboard.log_comparison] reads of a comparison's report."""

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
