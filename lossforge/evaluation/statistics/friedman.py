"""Losses ranked over several datasets: Friedman's test, the Nemenyi critical difference (Demšar 2006) and the
critical-difference diagram ([friedman_nemenyi][lossforge.evaluation.statistics.friedman.friedman_nemenyi]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lossforge.evaluation.statistics.difference import ALPHA
from lossforge.evaluation.statistics.metrics import Direction, metric_direction

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's test over datasets, with average ranks and the Nemenyi critical difference."""

    statistic: float  # Friedman's chi-square
    p_value: float  # of "all methods rank alike"
    average_ranks: dict[str, float]  # method → mean rank over the datasets, 1 = best, best first
    critical_difference: float  # two methods differ (Nemenyi, at alpha) when their ranks differ by at least this
    n_datasets: int
    alpha: float


def critical_difference(methods: int, datasets: int, *, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks (Demšar 2006, eq. 5).

    $$
    CD = q_\\alpha \\sqrt{\\frac{k (k + 1)}{6 N}}, \\qquad
    q_\\alpha = \\frac{\\text{studentized range}_{1-\\alpha}(k, \\infty)}{\\sqrt 2}
    $$

    for `k` methods on `N` datasets (`scipy.stats.studentized_range`).

    ```pycon
    >>> round(critical_difference(4, 10), 3)  # Demšar's table: q_0.05 = 2.569 for k = 4
    1.483

    ```
    """
    from scipy import stats

    q_alpha = float(stats.studentized_range.ppf(1 - alpha, methods, np.inf)) / math.sqrt(2)
    return q_alpha * math.sqrt(methods * (methods + 1) / (6 * datasets))


def friedman_nemenyi(
    scores: Mapping[str, Mapping[str, float]],
    *,
    metric: str,
    direction: Direction | None = None,
    alpha: float = ALPHA,
) -> FriedmanResult:
    """Do several methods (losses) rank differently over several datasets? Friedman, ranks, Nemenyi CD.

    Each dataset ranks the methods (1 = best; ties share the mean rank, `scipy.stats.rankdata`); the
    Friedman test (`scipy.stats.friedmanchisquare`) asks whether the average ranks differ more than
    chance; two methods whose average ranks differ by at least
    [critical_difference][lossforge.evaluation.statistics.friedman.critical_difference] differ at `alpha`
    (Nemenyi post-hoc test). Use one value per method and dataset — e.g. the mean over seeds.

    Args:
        scores: method → dataset → value; every method needs a value on every dataset.
        metric: what the values are of; decides the direction of a rank.
        direction: `"higher"` or `"lower"`, for a metric
            [metric_direction][lossforge.evaluation.statistics.metrics.metric_direction] does not know.
        alpha: level of the Nemenyi critical difference.

    Examples:
        >>> scores = {"cross_entropy": {"a": 0.90, "b": 0.80, "c": 0.70, "d": 0.95},
        ...           "focal": {"a": 0.92, "b": 0.82, "c": 0.71, "d": 0.96},
        ...           "hinge": {"a": 0.85, "b": 0.79, "c": 0.60, "d": 0.90}}
        >>> result = friedman_nemenyi(scores, metric="test/accuracy")
        >>> result.average_ranks, round(result.p_value, 4), round(result.critical_difference, 3)
        ({'focal': 1.0, 'cross_entropy': 2.0, 'hinge': 3.0}, 0.0183, 1.657)
    """
    from scipy import stats

    chosen = metric_direction(metric, override=direction)
    methods = list(scores)
    if len(methods) < 3:
        raise ValueError(
            f"Expected at least 3 methods for a Friedman test, got {len(methods)}; "
            "compare two methods with verdict_table on each dataset instead"
        )
    datasets = sorted(set().union(*(set(values) for values in scores.values())))
    if len(datasets) < 2:
        raise ValueError(
            f"Expected at least 2 datasets for a Friedman test, got {len(datasets)}: it ranks methods across "
            "datasets; on one dataset compare them with verdict_table"
        )
    missing = [f"{method} on {dataset}" for method in methods for dataset in datasets if dataset not in scores[method]]
    if missing:
        raise ValueError(f"Every method needs a value on every dataset; missing: {', '.join(missing)}")
    table = np.array([[scores[method][dataset] for method in methods] for dataset in datasets])  # (N, k)
    ranks = stats.rankdata(-table if chosen == "higher" else table, axis=1)  # (N, k), 1 = best
    statistic, p_value = stats.friedmanchisquare(*table.T)
    average = dict(zip(methods, ranks.mean(axis=0).tolist(), strict=True))
    return FriedmanResult(
        statistic=float(statistic),
        p_value=float(p_value),
        average_ranks=dict(sorted(average.items(), key=lambda item: item[1])),
        critical_difference=critical_difference(len(methods), len(datasets), alpha=alpha),
        n_datasets=len(datasets),
        alpha=alpha,
    )


def indistinguishable_runs(ranks: Sequence[float], critical: float) -> list[tuple[int, int]]:
    """Maximal runs `(first, last)` of sorted `ranks` closer than `critical`: the bars of a CD diagram.

    ```pycon
    >>> indistinguishable_runs([1.0, 1.5, 2.2, 3.9], 1.3)
    [(0, 2)]

    ```
    """
    spans: list[tuple[int, int]] = []
    for first in range(len(ranks)):
        last = max(j for j in range(first, len(ranks)) if ranks[j] - ranks[first] < critical)
        if last > first and not (spans and spans[-1][1] >= last):
            spans.append((first, last))
    return spans


def critical_difference_figure(result: FriedmanResult, *, title: str | None = None) -> Figure:
    """Demšar's critical-difference diagram: the methods on an average-rank axis (best on the left), a thick
    bar joining methods that do not differ significantly (Nemenyi), and the CD to scale above the axis."""
    from matplotlib.figure import Figure

    names = list(result.average_ranks)
    ranks = list(result.average_ranks.values())
    k = len(names)
    half = (k + 1) // 2  # the better half is labelled on the left, the rest on the right
    figure = Figure(figsize=(7, 1.4 + 0.3 * half))
    figure.subplots_adjust(left=0.25, right=0.75, top=0.8, bottom=0.05)  # the labels go into the margins
    axes = figure.subplots()
    axes.set_xlim(1, k)
    axes.set_ylim(-(half + 0.5), 1.6)
    axes.axis("off")
    axes.hlines(0, 1, k, color="black", linewidth=1)
    for tick in range(1, k + 1):
        axes.vlines(tick, 0, 0.15, color="black", linewidth=1)
        axes.text(tick, 0.25, str(tick), ha="center", va="bottom", fontsize=8)
    cd = result.critical_difference
    axes.hlines(1.1, 1, min(1 + cd, k), color="black", linewidth=1.5)
    axes.text(1, 1.2, f"CD = {cd:.2f}", ha="left", va="bottom", fontsize=8)
    for index, (name, rank) in enumerate(zip(names, ranks, strict=True)):
        left = index < half
        depth = -(index + 1) if left else -(k - index)
        edge = 1 if left else k
        axes.plot([rank, rank, edge], [0, depth, depth], color="black", linewidth=0.8, clip_on=False)
        label = f"{name} ({rank:.2f}) " if left else f" {name} ({rank:.2f})"
        axes.text(edge, depth, label, ha="right" if left else "left", va="center", fontsize=8, clip_on=False)
    for offset, (first, last) in enumerate(indistinguishable_runs(ranks, cd)):
        axes.hlines(-0.3 - 0.2 * offset, ranks[first] - 0.03, ranks[last] + 0.03, color="black", linewidth=3)
    axes.set_title(
        title or f"Average rank over {result.n_datasets} datasets (Friedman p = {result.p_value:.3g})", fontsize=9
    )
    return figure
