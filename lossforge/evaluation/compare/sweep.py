"""[compare][lossforge.evaluation.compare.sweep.compare]: one sweep's (or one `lossforge benchmark`
comparison's) runs read back, grouped, judged against the baseline, and returned as a
[ComparisonReport][lossforge.evaluation.compare.report.ComparisonReport] — logged onto the parent run only
when asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lossforge.contract import did_you_mean
from lossforge.evaluation.compare.groups import SEED, Group, Row, group_runs, pooled_keys, varying_params
from lossforge.evaluation.compare.report import ComparisonReport
from lossforge.evaluation.compare.store import find_sweep, open_store, read_runs
from lossforge.evaluation.compare.verdicts import (
    ComparisonError,
    choose_metrics,
    default_baselines,
    resolve_baseline,
    verdict_tables,
)
from lossforge.evaluation.dashboard.parent_run import log_comparison
from lossforge.evaluation.statistics.metrics import Direction, NotComparableError
from lossforge.evaluation.statistics.verdicts import VerdictRow
from lossforge.tracking import redact_uri


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
            ([log_comparison][lossforge.evaluation.dashboard.parent_run.log_comparison]); by default nothing is written.
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
