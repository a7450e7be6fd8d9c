"""Losses ranked across datasets ([compare_across][lossforge.evaluation.compare.across.compare_across]):
several sweeps, one dataset each, read back; Friedman's test, the Nemenyi critical difference and its
diagram.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossforge.evaluation.compare.groups import Row, group_runs, row_of
from lossforge.evaluation.compare.store import PROTOCOL_STAGE, _children
from lossforge.evaluation.compare.tables import _markdown
from lossforge.evaluation.compare.verdicts import ComparisonError
from lossforge.evaluation.statistics.metrics import Direction
from lossforge.tracking import check_reachable, resolve_tracking_uri

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _without_dataset(row: Row) -> Row:
    """A run without its dataset's parameters: across datasets, a group is the same loss configuration."""
    params = {key: value for key, value in row.params.items() if not key.startswith("dataset.")}
    return dataclasses.replace(row, params=params)


@dataclass(frozen=True)
class AcrossReport:
    """Losses ranked on several datasets
    ([compare_across][lossforge.evaluation.compare.across.compare_across]): Friedman's test, the Nemenyi critical
    difference, and its diagram."""

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

    from lossforge.evaluation.statistics.friedman import critical_difference_figure, friedman_nemenyi

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
