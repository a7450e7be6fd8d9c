"""Tasks built from scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download).

Four variants share one loader, so a loss can be compared across task types on the same images:

* [digits][lossforge.data.digits.digits] — 10-class classification; optionally with classes held out of training for
  metric learning.
* [digits_imbalanced][lossforge.data.digits.digits_imbalanced] — the same with a long-tailed training set (balanced
  val/test).
* [digits_binary][lossforge.data.digits.digits_binary] — a 0/1 task: is the digit one of `positive_digits`?
* [digits_multilabel][lossforge.data.digits.digits_multilabel] — four yes/no properties of the digit
  ([MULTILABEL_DEFINITIONS][lossforge.data.digits.MULTILABEL_DEFINITIONS]).

Every split is stratified by digit and seeded; features (64 pixel intensities, 0–16) are standardised per
pixel with training statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from numbers import Integral

import torch
from torch import Tensor

from lossforge.contract import Task
from lossforge.data.base import DataSplits
from lossforge.data.partition import check_fractions, partition_indices, seeded_generator, split_indices
from lossforge.data.samples import Split
from lossforge.data.standardize import standardize_features

NUM_DIGITS = 10
DIGIT_NAMES = tuple(str(digit) for digit in range(NUM_DIGITS))

MULTILABEL_DEFINITIONS: dict[str, frozenset[int]] = {
    "even": frozenset({0, 2, 4, 6, 8}),
    "at_least_5": frozenset({5, 6, 7, 8, 9}),
    "prime": frozenset({2, 3, 5, 7}),
    "closed_loop": frozenset({0, 4, 6, 8, 9}),
}
"""The labels of [digits_multilabel][lossforge.data.digits.digits_multilabel]: label name → the digits for which it is
1. A "closed loop" is an enclosed region in the digit's usual printed shape: 0, 6, 9 (one), 8 (two) and 4 (its closed
   top).
Labels are defined from the digit class, not the pixels, so an open handwritten 4 still has the label."""


@lru_cache(maxsize=1)
def load_digit_images() -> tuple[Tensor, Tensor]:
    """All 1,797 digits: features $(1797, 64)$ float32 (raw 0–16) and labels $(1797,)$ int64.

    Cached: callers index into the tensors (which copies) and must not modify them in place.

    ```pycon
    >>> features, labels = load_digit_images()
    >>> tuple(features.shape), labels.bincount().tolist()[:3]
    ((1797, 64), [178, 182, 177])

    ```
    """
    from sklearn.datasets import load_digits  # deferred: importing lossforge.data stays cheap

    bunch = load_digits()
    return torch.as_tensor(bunch.data, dtype=torch.float32), torch.as_tensor(bunch.target, dtype=torch.int64)


def _digit_list(values: Sequence[int] | None, parameter: str) -> tuple[int, ...]:
    """`values` as a sorted tuple of distinct digits 0–9; a ValueError names `parameter` otherwise."""
    if values is None:
        return ()
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"Expected `{parameter}` to be a list of digits 0-9, got {values!r}")
    digits_given = list(values)
    # Integral rather than int: numpy integers from a config or an array are fine, bools are not digits
    if any(isinstance(d, bool) or not isinstance(d, Integral) or not 0 <= d < NUM_DIGITS for d in digits_given):
        raise ValueError(f"Expected `{parameter}` to contain only the digits 0-9, got {digits_given}")
    digits_given = [int(d) for d in digits_given]
    if len(set(digits_given)) != len(digits_given):
        raise ValueError(f"Expected distinct digits in `{parameter}`, got {digits_given}")
    return tuple(sorted(digits_given))


def _stratified(seed: int, val_fraction: float, test_fraction: float) -> tuple[Split, Split, Split]:
    features, labels = load_digit_images()
    everything = Split(features, labels)
    indices = split_indices(
        len(labels), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, strata=labels
    )
    return tuple(everything.subset(part) for part in indices)  # type: ignore[return-value]


def digits(
    *,
    seed: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    held_out_classes: Sequence[int] | None = None,
    val_classes: Sequence[int] | None = None,
) -> DataSplits:
    """The 8×8 digits as a 10-class task, split 70/15/15 by default, stratified by digit.

    With `held_out_classes` (e.g. `[7, 8, 9]`) the split becomes an open-set retrieval benchmark:
    train and val hold only the other digits (split by `val_fraction`), and test holds *every* image of
    the held-out digits and nothing else (`test_fraction` is then unused). Only metric losses (contrastive,
    triplet, ...) can be evaluated this way — through embeddings, e.g. recall@k — since a classifier cannot
    predict a class it never saw. Targets keep their digit values, so `num_outputs` stays 10.

    With `val_classes` as well (e.g. `[5, 6]`), validation is class-disjoint too: it holds every image
    of those digits and training none — so hyper-parameters are chosen, like the test verdict, on classes
    the embedding never saw ("A Metric Learning Reality Check" tunes this way, with k folds over class
    partitions: `lossforge benchmark --class-folds`).

    Args:
        seed: seeds the split.
        val_fraction: share of the images (of the seen digits, with `held_out_classes`) for validation.
        test_fraction: share of the images for testing; unused with `held_out_classes`.
        held_out_classes: digits that appear only in the test split; `None` keeps all digits everywhere.
        val_classes: digits that appear only in the validation split (needs `held_out_classes`).

    Examples:
        >>> data = digits(seed=0)
        >>> data.task.name, data.num_outputs, data.input_dim, len(data.train), len(data.val), len(data.test)
        ('MULTICLASS', 10, 64, 1257, 270, 270)
        >>> open_set = digits(seed=0, held_out_classes=[7, 8, 9])
        >>> sorted(set(open_set.test.targets.tolist())), len(open_set.test)
        ([7, 8, 9], 533)
        >>> disjoint = digits(seed=0, held_out_classes=[7, 8, 9], val_classes=[5, 6])
        >>> sorted(set(disjoint.train.targets.tolist())), sorted(set(disjoint.val.targets.tolist()))
        ([0, 1, 2, 3, 4], [5, 6])
    """
    held_out = _digit_list(held_out_classes, "held_out_classes")
    validation = _digit_list(val_classes, "val_classes")
    if validation and not held_out:
        raise ValueError("val_classes needs held_out_classes: a class-disjoint validation split is for open-set tests")
    if set(validation) & set(held_out):
        raise ValueError(
            f"val_classes={list(validation)} and held_out_classes={list(held_out)} share "
            f"{sorted(set(validation) & set(held_out))}: a digit can be held out for validation or for test, not both"
        )
    if not held_out:
        train, val, test = _stratified(seed, val_fraction, test_fraction)
    else:
        trained = NUM_DIGITS - len(held_out) - len(validation)
        if trained < 2 or (validation and len(validation) < 2):
            raise ValueError(
                f"held_out_classes={list(held_out)} and val_classes={list(validation)} leave {trained} digit(s) to "
                "train on; metric learning needs at least 2 classes in each split to form negative pairs."
            )
        check_fractions(val_fraction, test_fraction)
        features, labels = load_digit_images()
        unseen = torch.isin(labels, torch.tensor(held_out))
        test = Split(features[unseen], labels[unseen])
        if validation:
            in_val = torch.isin(labels, torch.tensor(validation))
            train = Split(features[~unseen & ~in_val], labels[~unseen & ~in_val])
            val = Split(features[in_val], labels[in_val])
        else:
            seen = Split(features[~unseen], labels[~unseen])
            parts = partition_indices(seen.targets, {"val": val_fraction}, seed=seed)
            train, val = seen.subset(parts["train"]), seen.subset(parts["val"])
    train, val, test = standardize_features(train, val, test)
    return DataSplits("digits", Task.MULTICLASS, train, val, test, num_outputs=NUM_DIGITS, class_names=DIGIT_NAMES)


def imbalanced_class_sizes(largest: int, imbalance_ratio: float, num_classes: int = NUM_DIGITS) -> list[int]:
    """Exponential long-tail profile $n_c = \\mathrm{round}(n_{max} \\cdot r^{-c/(C-1)})$, at least 1.

    ```pycon
    >>> imbalanced_class_sizes(100, 10.0, num_classes=3)
    [100, 32, 10]

    ```
    """
    if not imbalance_ratio >= 1.0:
        raise ValueError(f"Expected `imbalance_ratio` >= 1 (largest / smallest class), got {imbalance_ratio!r}")
    return [max(1, round(largest * imbalance_ratio ** (-c / (num_classes - 1)))) for c in range(num_classes)]


def digits_imbalanced(
    *,
    seed: int,
    imbalance_ratio: float = 100.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """The digits with a long-tailed *training* set; val and test stay balanced.

    After the usual stratified split, digit `c` keeps a seeded random
    $n_c = n_{max} \\cdot r^{-c/9}$ of its training images
    ([imbalanced_class_sizes][lossforge.data.digits.imbalanced_class_sizes]), where $n_{max}$ is the smallest per-digit
    training count (so every digit can fill its quota) and $r$ is `imbalance_ratio`. Digit 0 is the majority class and
    digit 9 the rarest; 7, 8, 9 are the minority classes to watch. Val and test keep all their (roughly 27 per digit)
    images, so per-class recall on the minority digits is measurable.

    Args:
        seed: seeds the split and the subsampling.
        imbalance_ratio: largest / smallest training class size, >= 1 (realised up to rounding; the
            smallest class keeps at least 1 image).
        val_fraction: share of the images for validation.
        test_fraction: share of the images for testing.

    Examples:
        >>> data = digits_imbalanced(seed=0, imbalance_ratio=10.0)
        >>> data.train.targets.bincount().tolist()
        [122, 94, 73, 57, 44, 34, 26, 20, 16, 12]
        >>> data.test.targets.bincount().tolist()
        [27, 27, 27, 28, 27, 27, 27, 27, 26, 27]
    """
    sizes = imbalanced_class_sizes(1, imbalance_ratio)  # validates the ratio before loading anything
    train, val, test = _stratified(seed, val_fraction, test_fraction)
    per_class = train.targets.bincount(minlength=NUM_DIGITS)
    sizes = imbalanced_class_sizes(int(per_class.min()), imbalance_ratio)
    generator = seeded_generator(seed)
    kept = []
    for digit, size in enumerate(sizes):
        members = torch.nonzero(train.targets == digit).flatten()
        kept.append(members[torch.randperm(len(members), generator=generator)[:size]])
    train = train.subset(torch.cat(kept).sort().values)
    train, val, test = standardize_features(train, val, test)
    return DataSplits(
        "digits_imbalanced", Task.MULTICLASS, train, val, test, num_outputs=NUM_DIGITS, class_names=DIGIT_NAMES
    )


def digits_binary(
    *,
    seed: int,
    positive_digits: Sequence[int] = (1, 3, 5, 7, 9),
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """A binary task: label 1 when the digit is in `positive_digits` (default: odd digits), else 0.

    The default is nearly balanced (906 odd vs 891 even images); pass e.g. `[9]` for a 1-in-10
    imbalanced detection task. Targets are 0/1 int64 (losses that want ±1 convert them), and splits are
    stratified by the digit, which also stratifies the binary label.

    Args:
        seed: seeds the split.
        positive_digits: the digits labelled 1; at least one, and not all ten.
        val_fraction: share of the images for validation.
        test_fraction: share of the images for testing.

    Examples:
        >>> data = digits_binary(seed=0)
        >>> data.task.name, data.num_outputs, data.class_names
        ('BINARY', 1, ('digits 0,2,4,6,8', 'digits 1,3,5,7,9'))
        >>> data.train.targets.dtype, round(data.train.targets.float().mean().item(), 2)
        (torch.int64, 0.5)
    """
    positive = _digit_list(positive_digits, "positive_digits")
    if not 0 < len(positive) < NUM_DIGITS:
        raise ValueError(
            f"Expected `positive_digits` to hold between 1 and 9 digits so both classes exist, got {list(positive)}"
        )
    negative = tuple(d for d in range(NUM_DIGITS) if d not in positive)
    train, val, test = standardize_features(*_stratified(seed, val_fraction, test_fraction))
    positive_tensor = torch.tensor(positive)
    train, val, test = (
        Split(split.features, torch.isin(split.targets, positive_tensor).long()) for split in (train, val, test)
    )
    names = (f"digits {','.join(map(str, negative))}", f"digits {','.join(map(str, positive))}")
    return DataSplits("digits_binary", Task.BINARY, train, val, test, num_outputs=1, class_names=names)


def multilabel_targets(labels: Tensor) -> Tensor:
    """$(N,)$ digit labels → $(N, K)$ float32 0/1 rows, one column per
    [MULTILABEL_DEFINITIONS][lossforge.data.digits.MULTILABEL_DEFINITIONS] entry (even, at_least_5, prime, closed_loop).

    ```pycon
    >>> multilabel_targets(torch.tensor([2, 8])).tolist()
    [[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]]

    ```
    """
    columns = [torch.isin(labels, torch.tensor(sorted(members))) for members in MULTILABEL_DEFINITIONS.values()]
    return torch.stack(columns, dim=1).float()  # (N, K)


def digits_multilabel(
    *,
    seed: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """A multilabel task: four yes/no properties of each digit
    ([MULTILABEL_DEFINITIONS][lossforge.data.digits.MULTILABEL_DEFINITIONS]).

    Labels: `even` (0 2 4 6 8), `at_least_5` (5–9), `prime` (2 3 5 7) and `closed_loop`
    (0 4 6 8 9). Several can be 1 at once (8 is even, ≥ 5 and has loops) or none (1). Splits are stratified
    by the digit.

    Args:
        seed: seeds the split.
        val_fraction: share of the images for validation.
        test_fraction: share of the images for testing.

    Examples:
        >>> data = digits_multilabel(seed=0)
        >>> data.task.name, data.num_outputs, tuple(data.train.targets.shape)
        ('MULTILABEL', 4, (1257, 4))
    """
    train, val, test = standardize_features(*_stratified(seed, val_fraction, test_fraction))
    train, val, test = (Split(split.features, multilabel_targets(split.targets)) for split in (train, val, test))
    names = tuple(MULTILABEL_DEFINITIONS)
    return DataSplits("digits_multilabel", Task.MULTILABEL, train, val, test, num_outputs=len(names), class_names=names)
