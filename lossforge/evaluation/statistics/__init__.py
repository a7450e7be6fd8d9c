"""Is a difference between two losses real, or seed noise? The statistics behind an honest comparison.

Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020), found that most published loss
improvements vanish once every loss gets the same tuning budget and results are averaged over repeated
runs. This module turns repeated runs (one value per seed) into numbers that say how sure we are:

* [metric_direction][lossforge.evaluation.statistics.metrics.metric_direction] — which way is better for a
  metric (`accuracy` up, `mae` down); the training `loss` is refused: it is a different function for every loss,
  so its values do not compare.
* [summarize][lossforge.evaluation.statistics.summary.summarize] — n, mean, sample standard deviation and the
  95 % confidence interval of the mean.
* [compare_to_baseline][lossforge.evaluation.statistics.difference.compare_to_baseline] — the mean difference to
  a baseline with its 95 % confidence interval and a permutation-test p-value, paired by seed when both sides ran
  the same seeds.
* [verdict_table][lossforge.evaluation.statistics.verdicts.verdict_table] — one row per group with a verdict
  against the baseline (`better`, `worse`, `no detectable difference` or `too few runs…`), p-values Holm-adjusted
  over the table.
* [friedman_nemenyi][lossforge.evaluation.statistics.friedman.friedman_nemenyi] and
  [critical_difference_figure][lossforge.evaluation.statistics.friedman.critical_difference_figure] — several
  losses over several datasets: Friedman test, average ranks and the Nemenyi critical difference (Demšar, JMLR
  2006).

Everything works on plain numbers (`group → seed → value`); nothing here touches MLflow or torch.
scipy, statsmodels and matplotlib are imported inside the functions that use them, so importing this
module (and `lossforge compare`) stays fast.

How many seeds? With `n` paired seeds the exact sign-flip test can give no p-value below
`2 / 2**n` — reached when every seed moves the same way. Holm multiplies the smallest p-value of a table
by the number of comparisons `m`, so a verdict is possible at all only when `m * 2 / 2**n <= 0.05`,
i.e. `n >= 1 + log2(20 m)`: one comparison needs 6 seeds, 2–3 need 7, 4–6 need 8, 7–12 need 9
([seeds_needed][lossforge.evaluation.statistics.difference.seeds_needed]).
[RECOMMENDED_SEEDS][lossforge.evaluation.statistics.difference.RECOMMENDED_SEEDS] is 10, one margin above that
floor for a handful (five) of losses against a baseline: a large effect that shows in every seed gives
`5 * 2/1024 = 0.01`, and it is still detected when the smallest one or two differences point the other way (at
best `5 * 4/1024 = 0.02` and `5 * 8/1024 = 0.04`). With 8 seeds — the floor — a single contrary seed already loses
the verdict (`5 * 4/256 = 0.078`).

The package, one job a module: `metrics` (which metrics, which way is better), `summary` (one group),
`difference` (one group against the baseline; Holm; seeds needed), `verdicts` (the verdict table) and
`friedman` (several datasets). Every name is importable from here too.
"""

from lossforge.evaluation.statistics.difference import (
    ALPHA,
    PERMUTATIONS,
    RECOMMENDED_SEEDS,
    Difference,
    Seed,
    compare_to_baseline,
    holm,
    min_p_value,
    seeds_needed,
    shared_seeds,
)
from lossforge.evaluation.statistics.friedman import (
    FriedmanResult,
    critical_difference,
    critical_difference_figure,
    friedman_nemenyi,
    indistinguishable_runs,
)
from lossforge.evaluation.statistics.metrics import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    NOT_COMPARABLE,
    Direction,
    NotComparableError,
    is_comparable,
    metric_base_name,
    metric_direction,
)
from lossforge.evaluation.statistics.summary import CONFIDENCE, SINGLE_RUN_NOTE, Summary, summarize
from lossforge.evaluation.statistics.verdicts import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    VerdictRow,
    too_few_runs,
    verdict_table,
)

__all__ = [
    "ALPHA",
    "BETTER",
    "CONFIDENCE",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "NOT_COMPARABLE",
    "NO_DIFFERENCE",
    "PERMUTATIONS",
    "RECOMMENDED_SEEDS",
    "SINGLE_RUN_NOTE",
    "WORSE",
    "Difference",
    "Direction",
    "FriedmanResult",
    "NotComparableError",
    "Seed",
    "Summary",
    "VerdictRow",
    "compare_to_baseline",
    "critical_difference",
    "critical_difference_figure",
    "friedman_nemenyi",
    "holm",
    "indistinguishable_runs",
    "is_comparable",
    "metric_base_name",
    "metric_direction",
    "min_p_value",
    "seeds_needed",
    "shared_seeds",
    "summarize",
    "too_few_runs",
    "verdict_table",
]
