"""What `lossforge benchmark` prints when it is done: the verdict, each entry's tuning, the cost, where to look."""

from __future__ import annotations

from lossforge.protocol.runner import Comparison
from lossforge.tracking import dashboard_command


def print_comparison(comparison: Comparison) -> None:
    """The verdict tables (as `lossforge compare` printed them), the tuning, the wall time, the MLflow run."""
    lines = [comparison.report.rstrip(), "", "Tuning (trials complete / pruned / failed, best validation score):"]
    for outcome in comparison.outcomes:
        tuned = outcome.tuned
        best = "—" if tuned.best_value is None else f"{tuned.best_value:.4f}"
        counts = f"{tuned.count('COMPLETE')} / {tuned.count('PRUNED')} / {tuned.count('FAIL')}"
        lines.append(f"  {outcome.entry.label:<32} {counts:<12} {best}")
    minutes, seconds = divmod(round(comparison.seconds), 60)
    dashboard = dashboard_command(
        comparison.tracking_uri, run_id=comparison.run_id, experiment_id=comparison.experiment_id or None
    )
    lines += [
        "",
        f"Wall time:  {minutes} min {seconds} s",
        f"MLflow run: {comparison.run_id}   (the verdict again: lossforge compare {comparison.run_id})",
        f"Dashboard:  {dashboard}",  # opens the comparison's own page
        "",
    ]
    print("\n".join(lines), flush=True)
