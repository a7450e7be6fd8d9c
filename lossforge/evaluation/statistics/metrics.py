"""Which metrics a comparison may judge, and which way is better for each: `accuracy` higher, `mae` lower,
`loss` not comparable across losses at all. Names only; no numbers.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from lossforge.contract import did_you_mean

Direction = Literal["higher", "lower"]

HIGHER_IS_BETTER = ("accuracy", "f1_macro", "subset_accuracy", "recall*", "map_at_r", "knn_accuracy")
"""Metric names (the part after `train/`, `val/` or `test/`; fnmatch patterns) by better direction."""
LOWER_IS_BETTER = ("mae", "rmse", "nll", "ece")
NOT_COMPARABLE = {
    "loss": "it is each run's own training objective — L1, cross-entropy and triplet losses measure different "
    "things on different scales — so its values do not compare across losses",
}
"""Metrics whose values mean something different for every loss, so rows cannot be compared on them."""
_STAGES = ("train", "val", "test")


class NotComparableError(ValueError):
    """A metric whose values cannot be compared across rows (`loss`) was asked for a verdict."""


def metric_base_name(metric: str) -> str:
    """The metric's own name: without its stage prefix, and without a per-class suffix.

    ```pycon
    >>> metric_base_name("test/accuracy"), metric_base_name("test/recall/3"), metric_base_name("map_at_r")
    ('accuracy', 'recall', 'map_at_r')

    ```
    """
    parts = metric.split("/")
    if len(parts) > 1 and parts[0] in _STAGES:
        parts = parts[1:]
    return parts[0]


def metric_direction(metric: str, *, override: Direction | None = None) -> Direction:
    """Whether a higher or a lower value of `metric` is better.

    Args:
        metric: a logged metric name, e.g. `test/accuracy`, `val/mae`, `test/recall/3`.
        override: the caller's answer for a metric lossforge does not know (a plugin's own metric);
            it also replaces the built-in answer for a known one.

    Raises:
        NotComparableError: for `loss`, whatever the override: it is not the same function in two rows.
        ValueError: for an unknown metric without `override`, naming the known ones.

    Examples:
        >>> metric_direction("test/accuracy"), metric_direction("test/recall_at_1"), metric_direction("val/ece")
        ('higher', 'higher', 'lower')
        >>> metric_direction("test/brier", override="lower")
        'lower'
        >>> metric_direction("test/acuracy")
        Traceback (most recent call last):
        ...
        ValueError: lossforge does not know whether a higher or a lower 'test/acuracy' is better. ...
    """
    name = metric_base_name(metric)
    if name in NOT_COMPARABLE:
        raise NotComparableError(
            f"{metric!r} cannot be compared across rows: {NOT_COMPARABLE[name]}. Compare a task metric instead "
            f"(higher is better: {', '.join(HIGHER_IS_BETTER)}; lower is better: {', '.join(LOWER_IS_BETTER)})."
        )
    if override is not None:
        if override not in ("higher", "lower"):
            raise ValueError(f"Expected `override` to be 'higher' or 'lower', got {override!r}")
        return override
    if any(fnmatchcase(name, pattern) for pattern in HIGHER_IS_BETTER):
        return "higher"
    if any(fnmatchcase(name, pattern) for pattern in LOWER_IS_BETTER):
        return "lower"
    known = [*HIGHER_IS_BETTER, *LOWER_IS_BETTER]
    raise ValueError(
        f"lossforge does not know whether a higher or a lower {metric!r} is better. "
        f"Known: higher {', '.join(HIGHER_IS_BETTER)}; lower {', '.join(LOWER_IS_BETTER)}. "
        f"Say it explicitly: `lossforge compare --higher-is-better {metric}` (or --lower-is-better), "
        f"direction='higher' | 'lower' in Python.{did_you_mean(name, [k.rstrip('*') for k in known])}"
    )


def is_comparable(metric: str) -> bool:
    """Whether `metric` has a known direction and means the same in every row (default table columns).

    ```pycon
    >>> is_comparable("test/mae"), is_comparable("test/loss"), is_comparable("test/brier")
    (True, False, False)

    ```
    """
    try:
        metric_direction(metric)
    except ValueError:
        return False
    return True
