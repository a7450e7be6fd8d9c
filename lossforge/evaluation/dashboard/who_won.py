"""Who won: plain verdict rows in, plain answers out — each metric's winner against the baseline
([winners][lossforge.evaluation.dashboard.who_won.winners]), the tag naming them, and the numbers as the
dashboard prints them (decimals, differences, p-values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lossforge.evaluation.statistics.verdicts import BETTER, NO_DIFFERENCE, WORSE, VerdictRow

ARROWS = {"higher": "↑", "lower": "↓"}

NO_SIGNIFICANT_DIFFERENCE = "no significant difference"


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
        One [Winner][lossforge.evaluation.dashboard.who_won.Winner] per metric, in the order of `tables`.

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
