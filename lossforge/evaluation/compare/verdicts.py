"""What a comparison judges: the baseline group, the metrics, and a verdict table per metric.

The statistics are [lossforge.evaluation.statistics][lossforge.evaluation.statistics]'s; here the groups of
[lossforge.evaluation.compare.groups][lossforge.evaluation.compare.groups] are matched to the task's baseline,
the comparable `test/*` metrics are chosen, and a group that diverged on some seeds gets "diverged on k of n
seeds" instead of a verdict. [ComparisonError][lossforge.evaluation.compare.verdicts.ComparisonError] is the
error of every comparison that cannot be made as asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from lossforge.contract import did_you_mean
from lossforge.evaluation.compare.groups import Group, Row
from lossforge.evaluation.statistics.metrics import NOT_COMPARABLE, Direction, metric_base_name, metric_direction
from lossforge.evaluation.statistics.verdicts import VerdictRow, verdict_table


class ComparisonError(ValueError):
    """A comparison that cannot be made as asked — no such experiment, sweep, metric or baseline, or metrics
    that cannot be compared; the message says what to do instead."""


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
    [ComparisonError][lossforge.evaluation.compare.verdicts.ComparisonError] with a hint.

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

    Asked-for metrics must exist and be comparable (else
    [ComparisonError][lossforge.evaluation.compare.verdicts.ComparisonError] says why); by default every `test/*`
    metric a finished run has whose direction is known — never `test/loss`, a different function for every loss.
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
    """One [verdict_table][lossforge.evaluation.statistics.verdicts.verdict_table] per metric (Holm within each
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
