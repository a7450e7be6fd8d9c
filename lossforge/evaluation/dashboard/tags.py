"""The tags and metrics a comparison writes: the winner, the baseline and one verdict per metric as tags the
runs table can show ([verdict_tags][lossforge.evaluation.dashboard.tags.verdict_tags]), each child run's group
and verdicts, and each group's mean and CI as metrics with short names that sort by group
([group_metrics][lossforge.evaluation.dashboard.tags.group_metrics]).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from lossforge.evaluation.dashboard.who_won import _p, decimals, difference, winner_tag, winners
from lossforge.evaluation.statistics.verdicts import VerdictRow

WINNER_TAG = "lossforge.winner"
BASELINE_TAG = "lossforge.baseline"
VERDICT_TAG = "lossforge.verdict"  # on the parent: `lossforge.verdict.<metric>`; on a child: its group's verdicts
GROUP_TAG = "lossforge.group"


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
    them ([decimals][lossforge.evaluation.dashboard.who_won.decimals]); each seed's exact value is in
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
