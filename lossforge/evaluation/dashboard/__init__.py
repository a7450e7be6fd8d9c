"""What a comparison leaves on the dashboard: who won, where MLflow shows it first.

A reviewer opens the parent run of a sweep (the page `lossforge ui` prints) and must see who won without
reading numbers. MLflow 3 shows a run's page in this order — the description (the tag `mlflow.note.content`,
markdown), its metrics, its tags — so [log_comparison][lossforge.evaluation.dashboard.parent_run.log_comparison] writes:

- the **description**: a heading naming the winner, one line per metric (winner, difference to the baseline
  with its 95 % CI, Holm-adjusted p), each group's mean per metric, and the comparison figure
  (see [description][lossforge.evaluation.dashboard.run_page.description]). A later `--log` replaces it; what
  a person wrote below its last line is kept;
- **tags** the runs table can show as columns: `lossforge.winner`, `lossforge.baseline` and one
  `lossforge.verdict.<metric>` per metric (stale ones are deleted); on every child run `lossforge.group`
  (the runs table can group by it) and `lossforge.verdict` (its group's verdicts);
- **metrics** with short names that sort by group: `<group>/<metric>` (the mean), `…/ci_low`, `…/ci_high`,
  rounded for display ([group_metrics][lossforge.evaluation.dashboard.tags.group_metrics]); the same names on
  every log, so a later one overwrites them;
- the **artifacts** listed in `ARTIFACTS`: the full tables and the figure.

The winner of a metric ([winners][lossforge.evaluation.dashboard.who_won.winners]) is the best group that is
significantly better than the baseline (verdict `better` after Holm's correction); where none is, the
metric has "no significant difference" (or says why there is no verdict at all).

The package, one job a module: `who_won` (who won), `run_page` (the description the run page opens on), `tags` (tags and
group metrics), `figure` (the comparison's figure) and `parent_run` (all of it written onto the parent run).
Every public name is importable from here too.
"""

from lossforge.evaluation.dashboard.figure import MIN_RELATIVE_SPAN, verdict_figure, y_limits
from lossforge.evaluation.dashboard.parent_run import ARTIFACTS, ComparisonReport, log_comparison
from lossforge.evaluation.dashboard.run_page import (
    DESCRIPTION_END,
    DESCRIPTION_TAG,
    MAX_DESCRIPTION,
    PLOT,
    description,
    group_table,
    headline,
)
from lossforge.evaluation.dashboard.tags import (
    BASELINE_TAG,
    GROUP_TAG,
    VERDICT_TAG,
    WINNER_TAG,
    child_verdicts,
    group_metrics,
    mlflow_name,
    verdict_tags,
)
from lossforge.evaluation.dashboard.who_won import (
    ARROWS,
    NO_SIGNIFICANT_DIFFERENCE,
    Winner,
    decimals,
    difference,
    winner_tag,
    winners,
)

__all__ = [
    "ARROWS",
    "ARTIFACTS",
    "BASELINE_TAG",
    "DESCRIPTION_END",
    "DESCRIPTION_TAG",
    "GROUP_TAG",
    "MAX_DESCRIPTION",
    "MIN_RELATIVE_SPAN",
    "NO_SIGNIFICANT_DIFFERENCE",
    "PLOT",
    "VERDICT_TAG",
    "WINNER_TAG",
    "ComparisonReport",
    "Winner",
    "child_verdicts",
    "decimals",
    "description",
    "difference",
    "group_metrics",
    "group_table",
    "headline",
    "log_comparison",
    "mlflow_name",
    "verdict_figure",
    "verdict_tags",
    "winner_tag",
    "winners",
    "y_limits",
]
