"""A sweep's runs read back from MLflow, with a verdict on every difference.

A sweep is one parent MLflow run with a child run per job (see `lossforge.sweeps.MlflowSweepCallback`). Runs
that differ only in the seed (and whatever `--mean-over` adds) form a group, named by its loss and what else
tells it apart (`focal gamma=2`); every other group is compared to a baseline group (the task's:
`TaskSpec.baseline`) on every comparable test metric, with the statistics of
[lossforge.evaluation.statistics][lossforge.evaluation.statistics]: mean, sample standard deviation, 95 %
confidence intervals, a permutation test paired by seed, Holm's correction, and a verdict.

Which runs count follows `docs/decisions.md` §2: the newest finished run of each seed; a group that diverged
on some seeds gets "diverged on k of n seeds" instead of a verdict; failed and killed runs are listed under
the tables; superseded runs never count.

[compare][lossforge.evaluation.compare.sweep.compare] reads a sweep back and returns a
[ComparisonReport][lossforge.evaluation.compare.report.ComparisonReport]; it writes nothing unless asked (`log=True`,
`lossforge compare --log`, and a sweep's own end-of-sweep comparison, which logs the verdict onto the parent
run through [log_comparison][lossforge.evaluation.dashboard.parent_run.log_comparison]). `lossforge compare` is
the command over it, and `lossforge benchmark` prints and logs the same report. Everything but `compare`,
`compare_across`, `find_sweep` and `read_runs` works on plain numbers.

The package, one job a module, bottom to top:

- `groups`: runs as rows (`Row`), pooled into groups (`Group`, `group_runs`).
- `verdicts`: the baseline, the metrics, a verdict table per metric; `ComparisonError`.
- `tables`: the comparison rendered as markdown, CSV and JSON.
- `report`: `ComparisonReport`, what `compare` returns.
- `store`: the sweep's runs read back from the MLflow store.
- `sweep`: `compare` itself.
- `across`: `compare_across`, losses ranked over several datasets.

The names code outside the package uses are importable from here too.
"""

from lossforge.evaluation.compare.across import AcrossReport, compare_across
from lossforge.evaluation.compare.groups import Group, Row, group_runs
from lossforge.evaluation.compare.report import ComparisonReport
from lossforge.evaluation.compare.store import find_sweep, read_runs
from lossforge.evaluation.compare.sweep import compare
from lossforge.evaluation.compare.verdicts import ComparisonError, verdict_tables

__all__ = [
    "AcrossReport",
    "ComparisonError",
    "ComparisonReport",
    "Group",
    "Row",
    "compare",
    "compare_across",
    "find_sweep",
    "group_runs",
    "read_runs",
    "verdict_tables",
]
