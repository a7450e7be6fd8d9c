"""The report of a comparison, [ComparisonReport][lossforge.evaluation.compare.report.ComparisonReport]: its
groups, verdict tables, notes and figure, and its renderers (what `lossforge compare --format` prints).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossforge.evaluation.compare.groups import Group, Row
from lossforge.evaluation.compare.tables import comparison_markdown, verdicts_to_csv, verdicts_to_json
from lossforge.evaluation.dashboard.figure import verdict_figure
from lossforge.evaluation.dashboard.parent_run import ARTIFACTS
from lossforge.evaluation.statistics.difference import seeds_needed
from lossforge.evaluation.statistics.verdicts import VerdictRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class ComparisonReport:
    """A sweep's (or a `lossforge benchmark` comparison's) runs compared: the groups, a verdict table per
    metric, the notes, and the figure; rendered by
    [to_text][lossforge.evaluation.compare.report.ComparisonReport.to_text],
    [to_markdown][lossforge.evaluation.compare.report.ComparisonReport.to_markdown],
    [to_csv][lossforge.evaluation.compare.report.ComparisonReport.to_csv] and
    [to_json][lossforge.evaluation.compare.report.ComparisonReport.to_json] (what `lossforge compare --format`
    prints)."""

    run_id: str  # the parent run compared
    kind: str  # "Sweep" or "Comparison" (lossforge benchmark's)
    overrides: str  # the sweep's command-line overrides, as its parent run records them
    summary: str  # "3 groups from 9 runs, mean over seed"
    groups: tuple[Group, ...]
    params: tuple[str, ...]  # the parameters that tell the groups apart
    tables: dict[str, list[VerdictRow]]  # metric → its verdict table
    notes: tuple[str, ...]
    failed: tuple[dict[str, Any], ...] = ()  # a comparison's entries whose every tuning trial failed
    logged: bool = False  # whether the tables, the figure and the group metrics went onto the parent run
    baseline: str | None = None  # the baseline group's label
    bounds: dict[str, tuple[float | None, float | None]] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def figure(self) -> Figure | None:
        """Each seed, each group's mean and CI ([verdict_figure][lossforge.evaluation.dashboard.figure.verdict_figure]);
        `None` without a table. Drawn when first asked for: a comparison that is only read draws nothing."""
        return verdict_figure(self.tables) if self.tables else None

    @property
    def rows(self) -> list[VerdictRow]:
        """Every verdict row, metric by metric."""
        return [row for rows in self.tables.values() for row in rows]

    def left_out(self) -> list[tuple[Group, Row]]:
        """The runs outside the statistics — failed, killed, still running — with their group."""
        return [(group, run) for group in self.groups for run in group.left_out()]

    def under_table(self) -> list[str]:
        """The lines under the tables: every run left out of the statistics, its outcome and error."""
        left = self.left_out()
        if not left:
            return []
        lines = [f"Left out of the statistics ({len(left)} run{'s' if len(left) != 1 else ''}, by outcome):"]
        for group, run in left:
            error = " ".join(run.error.split())[:200] or "no error recorded"
            lines.append(f"- {group.label}, seed {group.seed(run)} (run {run.run_name}): {run.outcome} — {error}")
        return ["\n".join(lines)]

    def json_rows(self) -> list[dict[str, Any]]:
        """The verdict rows with each group's seeds, the seeds that diverged and the runs that lack the
        metric; then the protocol's failed entries and every run left out, one object each."""
        by_label = {group.label: group for group in self.groups}
        rows: list[dict[str, Any]] = []
        for row in self.rows:
            group = by_label[row.group]
            missing = group.missing(row.metric)
            rows.append(
                {**row.as_dict(), "seeds": group.seeds, "diverged": len(group.diverged()), "missing": len(missing)}
            )
        rows += [dict(entry) for entry in self.failed]
        for group, run in self.left_out():
            rows.append(
                {
                    "group": group.label,
                    "metric": None,
                    "n": 0,
                    "verdict": "left out",
                    "outcome": run.outcome,
                    "error": run.error,
                    "run": run.run_name,
                    "run_id": run.run_id,
                    "seed": group.seed(run),
                }
            )
        return rows

    def to_markdown(self) -> str:
        """The whole comparison as markdown
        ([comparison_markdown][lossforge.evaluation.compare.tables.comparison_markdown])."""
        return comparison_markdown(
            self.groups, self.params, self.tables, notes=self.notes, bounds=self.bounds, under=self.under_table()
        )

    def to_text(self) -> str:
        """A line naming the sweep, then the markdown: what `lossforge compare` prints by default."""
        return f"{self.kind} {self.run_id} ({self.overrides}): {self.summary}\n\n{self.to_markdown()}"

    def to_csv(self) -> str:
        """The verdict rows as CSV ([verdicts_to_csv][lossforge.evaluation.compare.tables.verdicts_to_csv])."""
        return verdicts_to_csv(self.rows)

    def to_json(self) -> str:
        """The rows of [json_rows][lossforge.evaluation.compare.report.ComparisonReport.json_rows] as JSON."""
        return verdicts_to_json(self.json_rows())

    def render(self, format: str = "table") -> str:
        """`"table"` ([to_text][lossforge.evaluation.compare.report.ComparisonReport.to_text]), `"markdown"`, `"csv"` or
        `"json"`."""
        renderers = {"table": self.to_text, "markdown": self.to_markdown, "csv": self.to_csv, "json": self.to_json}
        if format not in renderers:
            raise ValueError(f"Expected `format` in {sorted(renderers)}, got {format!r}")
        return renderers[format]()

    def save_figure(self, path: str | Path) -> Path | None:
        """Write the figure to `path` (its folder created); `None` when there is no figure."""
        if self.figure is None:
            return None
        output = Path(path)
        output.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(output, dpi=120)
        return output

    def seeds_for_a_verdict(self) -> int | None:
        """The paired seeds every group needs for a verdict to be possible against the baseline
        ([seeds_needed][lossforge.evaluation.statistics.difference.seeds_needed] for one comparison per other group);
        `None` without a baseline or another group."""
        comparisons = sum(group.label != self.baseline for group in self.groups)
        if self.baseline is None or comparisons == 0:
            return None
        return seeds_needed(comparisons)

    def footer(self, plot: Path | None) -> list[str]:
        """The lines `lossforge compare` prints after the tables: where the plot went, what was logged."""
        lines = [f"Plot: {plot}"] if plot is not None else []
        if self.logged:
            logged = f"{', '.join(ARTIFACTS)}, group metrics"
            lines.append(f"Logged to the {self.kind.lower()}'s MLflow run {self.run_id}: {logged}")
        return lines
