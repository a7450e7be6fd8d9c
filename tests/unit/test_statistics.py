"""``lossforge.evaluation.statistics`` against scipy and statsmodels called directly, against hand-computed exact
p-values, and on planted effects: a real difference gets a verdict in the right direction, none gets none, and
too few seeds say so."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats
from statsmodels.stats.multitest import multipletests

from lossforge.evaluation.statistics import (
    BETTER,
    NO_DIFFERENCE,
    RECOMMENDED_SEEDS,
    WORSE,
    NotComparableError,
    compare_to_baseline,
    critical_difference,
    critical_difference_figure,
    friedman_nemenyi,
    holm,
    indistinguishable_runs,
    is_comparable,
    metric_direction,
    min_p_value,
    seeds_needed,
    summarize,
    too_few_runs,
    verdict_table,
)

VALUES = [0.912, 0.925, 0.904, 0.931, 0.918]
BASELINE = [0.901, 0.915, 0.899, 0.915, 0.920]


def by_seed(values: list[float] | np.ndarray, first_seed: int = 0) -> dict[int, float]:
    return {first_seed + seed: float(value) for seed, value in enumerate(values)}


# -- which way is better -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric",
    ["test/accuracy", "val/f1_macro", "test/subset_accuracy", "test/recall/3", "test/recall_at_5", "test/map_at_r",
     "test/knn_accuracy", "accuracy"],
)  # fmt: skip
def test_task_metrics_where_higher_is_better(metric: str) -> None:
    assert metric_direction(metric) == "higher" and is_comparable(metric)


@pytest.mark.parametrize("metric", ["test/mae", "val/rmse", "test/nll", "test/ece"])
def test_task_metrics_where_lower_is_better(metric: str) -> None:
    assert metric_direction(metric) == "lower" and is_comparable(metric)


@pytest.mark.parametrize("override", [None, "higher", "lower"])
def test_the_training_loss_is_refused_even_with_an_override(override: str | None) -> None:
    with pytest.raises(NotComparableError, match="each run's own training objective"):
        metric_direction("test/loss", override=override)  # type: ignore[arg-type]
    assert not is_comparable("test/loss")


def test_an_unknown_metric_asks_for_a_direction_and_suggests_a_close_name() -> None:
    with pytest.raises(ValueError, match=r"--higher-is-better test/acuracy.*Did you mean 'accuracy'"):
        metric_direction("test/acuracy")
    assert metric_direction("test/brier", override="lower") == "lower"
    with pytest.raises(ValueError, match="Expected `override`"):
        metric_direction("test/brier", override="up")  # type: ignore[arg-type]


# -- one group ---------------------------------------------------------------------------------------------


def test_the_interval_of_a_mean_is_students_t() -> None:
    summary = summarize(VALUES)
    expected = stats.t.interval(0.95, len(VALUES) - 1, loc=np.mean(VALUES), scale=stats.sem(VALUES))
    assert summary.n == 5 and summary.mean == pytest.approx(np.mean(VALUES))
    assert summary.std == pytest.approx(np.std(VALUES, ddof=1))  # the sample standard deviation
    assert (summary.ci_low, summary.ci_high) == pytest.approx(expected)


def test_one_run_has_a_mean_without_interval_and_says_why() -> None:
    summary = summarize([0.9])
    assert (summary.n, summary.mean, summary.std, summary.ci_low, summary.ci_high) == (1, 0.9, None, None, None)
    assert "at least 2 runs" in summary.note


def test_identical_values_give_a_point_interval() -> None:
    summary = summarize([0.5, 0.5, 0.5])
    assert (summary.std, summary.ci_low, summary.ci_high) == (0.0, 0.5, 0.5)


# -- against a baseline ------------------------------------------------------------------------------------


def test_a_paired_difference_matches_scipys_sign_flip_test_and_paired_t_interval() -> None:
    difference = compare_to_baseline(by_seed(VALUES), by_seed(BASELINE))
    differences = np.subtract(VALUES, BASELINE)
    test = stats.permutation_test(
        (differences,), np.mean, permutation_type="samples", n_resamples=10_000, alternative="two-sided"
    )
    interval = stats.ttest_rel(VALUES, BASELINE).confidence_interval(0.95)
    assert difference.paired and difference.exact
    assert difference.difference == pytest.approx(differences.mean())
    assert difference.p_value == pytest.approx(test.pvalue)
    assert (difference.ci_low, difference.ci_high) == pytest.approx((interval.low, interval.high))


def test_different_seeds_are_compared_unpaired_with_welch_and_a_relabelling_test() -> None:
    difference = compare_to_baseline(by_seed(VALUES), by_seed(BASELINE, first_seed=10))
    test = stats.permutation_test(
        (VALUES, BASELINE),
        lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        permutation_type="independent",
        vectorized=True,
        n_resamples=10_000,
    )
    interval = stats.ttest_ind(VALUES, BASELINE, equal_var=False).confidence_interval(0.95)
    assert not difference.paired and difference.exact  # C(10, 5) = 252 labellings, all enumerated
    assert difference.p_value == pytest.approx(test.pvalue)
    assert (difference.ci_low, difference.ci_high) == pytest.approx((interval.low, interval.high))
    assert difference.min_p_value == pytest.approx(2 / math.comb(10, 5))


def test_the_exact_sign_flip_p_value_of_a_tiny_paired_example_by_hand() -> None:
    # Differences 1, 2, -0.5 (sum 2.5). Of the 8 sign patterns of (1, 2, 0.5), sums are ±3.5, ±2.5, ±1.5, ±0.5:
    # four have |sum| >= 2.5, so p = 4 / 8.
    difference = compare_to_baseline({0: 2.0, 1: 3.0, 2: 0.5}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert difference.p_value == pytest.approx(0.5)
    # Five seeds all better: only the observed pattern and its mirror are as extreme, 2 / 32.
    assert compare_to_baseline(by_seed(VALUES), by_seed(np.subtract(VALUES, 0.01))).p_value == pytest.approx(2 / 32)


def test_one_run_on_a_side_has_neither_interval_nor_test_and_gets_no_verdict() -> None:
    difference = compare_to_baseline({0: 0.9}, {1: 0.8, 2: 0.85})
    assert (difference.ci_low, difference.ci_high, difference.p_value) == (None, None, None)
    (_, single, tested) = verdict_table(
        {"baseline": by_seed(BASELINE), "single": {0: 0.99}, "tested": by_seed(VALUES)},
        metric="test/accuracy",
        baseline="baseline",
    )
    # Unpaired against the baseline's 5 runs, 2 comparisons: 4 runs give 2 x 2/C(9, 4) = 0.032 (the advice once
    # assumed 5 runs on both sides as well, 2 x 2/C(10, 5)).
    assert single.verdict == too_few_runs(4) and single.p_adjusted is None
    assert tested.p_adjusted == pytest.approx(tested.p_value)  # the untestable row is not in Holm's family


@pytest.mark.parametrize(("n", "expected"), [(1, 1.0), (5, 0.0625), (6, 2 / 64), (13, 2 / 2**13), (20, 2 / 10_000)])
def test_the_smallest_p_value_of_n_paired_seeds(n: int, expected: float) -> None:
    assert min_p_value(n) == pytest.approx(expected)


@pytest.mark.parametrize("comparisons", range(1, 30))
def test_seeds_needed_is_the_fewest_that_can_pass_holm(comparisons: int) -> None:
    n = seeds_needed(comparisons)
    assert comparisons * min_p_value(n) <= 0.05 < comparisons * min_p_value(n - 1)


def test_holm_is_statsmodels_holm() -> None:
    p_values = [0.01, 0.04, 0.03, 0.2, 0.005]
    assert holm(p_values) == pytest.approx(multipletests(p_values, method="holm")[1])
    assert holm([]) == []


# -- verdicts ----------------------------------------------------------------------------------------------


def planted(rng: np.random.Generator, shift: float, *, seeds: int = RECOMMENDED_SEEDS) -> dict[str, dict[int, float]]:
    """A baseline and a candidate ``shift`` away, sharing each seed's noise (split and initialisation)."""
    seed_noise = rng.normal(0.0, 0.01, seeds)
    baseline = 0.9 + seed_noise + rng.normal(0.0, 0.004, seeds)
    candidate = 0.9 + shift + seed_noise + rng.normal(0.0, 0.004, seeds)
    return {"baseline": by_seed(baseline), "candidate": by_seed(candidate)}


@pytest.mark.parametrize(
    ("metric", "shift", "verdict"),
    [("test/accuracy", 0.02, BETTER), ("test/accuracy", -0.02, WORSE), ("test/mae", -0.02, BETTER),
     ("test/mae", 0.02, WORSE)],
)  # fmt: skip
def test_a_planted_effect_gets_a_verdict_in_the_metrics_direction(metric: str, shift: float, verdict: str) -> None:
    rows = verdict_table(planted(np.random.default_rng(0), shift), metric=metric, baseline="baseline")
    assert rows[0].verdict is None and rows[0].group == "baseline"
    assert rows[1].verdict == verdict and rows[1].paired
    assert rows[1].difference == pytest.approx(shift, abs=0.01)


def test_two_identical_configurations_show_no_detectable_difference() -> None:
    rng = np.random.default_rng(1)
    same = {
        "baseline": by_seed(rng.normal(0.9, 0.01, RECOMMENDED_SEEDS)),
        "rerun": by_seed(rng.normal(0.9, 0.01, RECOMMENDED_SEEDS), first_seed=100),  # other seeds: unpaired
    }
    (_, row) = verdict_table(same, metric="test/accuracy", baseline="baseline")
    assert row.verdict == NO_DIFFERENCE and not row.paired
    assert row.difference_ci_low is not None and row.difference_ci_high is not None
    assert row.difference_ci_low < 0 < row.difference_ci_high


def test_the_false_positive_rate_of_the_paired_test_stays_at_alpha() -> None:
    rng = np.random.default_rng(2)
    trials = 300
    positives = sum(
        compare_to_baseline(*planted(rng, 0.0, seeds=8).values()).p_value <= 0.05 for _ in range(trials)
    )  # with 8 seeds the attainable level is 12/256 = 0.047
    assert positives / trials < 0.09  # binomial: mean 0.047, sd 0.012


def test_five_paired_seeds_are_too_few_for_any_verdict() -> None:
    (_, row) = verdict_table(
        planted(np.random.default_rng(0), 0.5, seeds=5), metric="test/accuracy", baseline="baseline"
    )
    assert row.p_value == pytest.approx(0.0625)  # the most extreme data: every seed better
    assert row.verdict == too_few_runs(6) == "too few runs for a verdict (needs ≥ 6 seeds)"


def test_holm_adjusts_over_the_comparisons_of_a_table() -> None:
    rng = np.random.default_rng(3)
    groups = {"baseline": by_seed(rng.normal(0.9, 0.01, 10))}
    for shift in (0.0, 0.005, 0.02):
        groups[f"shift {shift}"] = by_seed(rng.normal(0.9 + shift, 0.01, 10))
    rows = verdict_table(groups, metric="test/accuracy", baseline="baseline")
    p_values = [row.p_value for row in rows[1:]]
    assert [row.p_adjusted for row in rows[1:]] == pytest.approx(multipletests(p_values, method="holm")[1])


def test_the_recommended_seeds_survive_a_contrary_seed_over_five_comparisons() -> None:
    """The module docstring's arithmetic: 10 seeds, 5 losses against a baseline, the smallest difference of each
    pointing the other way — still ``better`` (5 x 4/1024); with 8 seeds the same data loses it (5 x 4/256)."""

    def table(seeds: int) -> list[str | None]:
        differences = np.r_[-0.001, np.linspace(0.01, 0.02, seeds - 1)]
        groups = {"baseline": by_seed(np.full(seeds, 0.9))}
        groups |= {f"loss {i}": by_seed(0.9 + differences * (1 + 0.1 * i)) for i in range(5)}
        return [row.verdict for row in verdict_table(groups, metric="test/accuracy", baseline="baseline")[1:]]

    assert RECOMMENDED_SEEDS == 10
    assert table(10) == [BETTER] * 5
    assert table(8) == [NO_DIFFERENCE] * 5


def test_without_a_baseline_rows_carry_only_summaries() -> None:
    rows = verdict_table({"a": {0: 1.0, 1: 2.0}, "b": {0: 3.0}}, metric="test/mae")
    assert [(row.n, row.baseline, row.verdict, row.p_value) for row in rows] == [
        (2, None, None, None),
        (1, None, None, None),
    ]
    assert rows[1].note and rows[0].as_dict()["values"] == {"0": 1.0, "1": 2.0}


def test_a_verdict_table_refuses_the_loss_an_unknown_baseline_and_an_empty_group() -> None:
    groups = {"cross_entropy": {0: 0.1}, "focal": {0: 0.2}}
    with pytest.raises(NotComparableError):
        verdict_table(groups, metric="test/loss", baseline="cross_entropy")
    with pytest.raises(ValueError, match="Did you mean 'cross_entropy'"):
        verdict_table(groups, metric="test/accuracy", baseline="cross_entropi")
    with pytest.raises(ValueError, match="Groups without a value"):
        verdict_table({**groups, "hinge": {}}, metric="test/accuracy")


# -- several datasets --------------------------------------------------------------------------------------

SCORES = {  # method → dataset → accuracy
    "cross_entropy": {"digits": 0.97, "imbalanced": 0.74, "binary": 0.99, "mnist": 0.98, "multilabel": 0.81},
    "focal": {"digits": 0.96, "imbalanced": 0.75, "binary": 0.99, "mnist": 0.97, "multilabel": 0.80},
    "hinge": {"digits": 0.95, "imbalanced": 0.70, "binary": 0.98, "mnist": 0.96, "multilabel": 0.78},
    "weighted_cross_entropy": {"digits": 0.97, "imbalanced": 0.77, "binary": 0.99, "mnist": 0.98, "multilabel": 0.82},
}


def test_friedman_matches_scipy_and_ranks_by_hand() -> None:
    result = friedman_nemenyi(SCORES, metric="test/accuracy")
    datasets = sorted(SCORES["focal"])
    expected = stats.friedmanchisquare(*([SCORES[m][d] for d in datasets] for m in SCORES))
    assert (result.statistic, result.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    # e.g. binary: a three-way tie for first (rank 2 each); digits and mnist: ce and wce tie for first (1.5 each).
    assert result.average_ranks == pytest.approx(
        {"weighted_cross_entropy": 1.4, "cross_entropy": 2.0, "focal": 2.6, "hinge": 4.0}
    )
    assert list(result.average_ranks) == ["weighted_cross_entropy", "cross_entropy", "focal", "hinge"]
    assert result.n_datasets == 5


def test_lower_is_better_reverses_the_ranks() -> None:
    errors = {method: {d: 1 - v for d, v in scores.items()} for method, scores in SCORES.items()}
    assert (
        friedman_nemenyi(errors, metric="test/ece").average_ranks
        == friedman_nemenyi(SCORES, metric="test/accuracy").average_ranks
    )


@pytest.mark.parametrize(("k", "q_alpha"), [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850)])
def test_the_critical_difference_uses_demsars_q_values(k: int, q_alpha: float) -> None:
    assert critical_difference(k, 14) == pytest.approx(q_alpha * math.sqrt(k * (k + 1) / (6 * 14)), abs=1e-3)


def test_friedman_needs_three_methods_and_every_dataset() -> None:
    with pytest.raises(ValueError, match="at least 3 methods"):
        friedman_nemenyi({"a": {"x": 1.0}, "b": {"x": 2.0}}, metric="test/accuracy")
    with pytest.raises(ValueError, match="focal on mnist"):
        friedman_nemenyi({**SCORES, "focal": {"digits": 0.9}}, metric="test/accuracy")


def test_the_critical_difference_diagram_names_every_method_and_joins_the_indistinguishable() -> None:
    result = friedman_nemenyi(SCORES, metric="test/accuracy")
    figure = critical_difference_figure(result)
    assert isinstance(figure, Figure)
    texts = " ".join(text.get_text() for text in figure.axes[0].texts)
    assert all(method in texts for method in SCORES) and f"CD = {result.critical_difference:.2f}" in texts
    assert indistinguishable_runs([1.0, 1.5, 2.2, 3.9], 1.3) == [(0, 2)]
    assert indistinguishable_runs([1.0, 2.0, 3.0], 5.0) == [(0, 2)]
    assert indistinguishable_runs([1.0, 3.0, 5.0], 1.0) == []
