"""The comparison's figure: each seed as a dot, each group's mean with its 95 % CI, one panel per metric
([verdict_figure][lossforge.evaluation.dashboard.figure.verdict_figure]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lossforge.evaluation.dashboard.who_won import ARROWS
from lossforge.evaluation.statistics.verdicts import VerdictRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


MIN_RELATIVE_SPAN = 0.05
"""A panel's y-axis spans at least this fraction of its largest absolute value: a 0.0009 difference between
accuracies of 0.95 must not fill the panel as if it were a cliff."""


def verdict_figure(tables: Mapping[str, Sequence[VerdictRow]]) -> Figure:
    """A panel per metric: each group's runs, its mean (with its 95 % CI where it has one), the baseline in
    black with its mean as a dashed line, and every verdict under its group's name.

    The legend names only what is drawn (with one run per group: no seed dots, no intervals), and a panel's
    y-axis spans at least `MIN_RELATIVE_SPAN` of its largest value
    ([y_limits][lossforge.evaluation.dashboard.figure.y_limits]), its range written in the axis label.
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
