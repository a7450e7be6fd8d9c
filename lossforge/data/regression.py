"""Regression datasets: a synthetic problem with outliers in its training targets; scikit-learn's diabetes.

[regression_outliers][lossforge.data.regression.regression_outliers] is the robustness benchmark: the training targets
are contaminated, val and test are clean, so a loss that resists outliers (L1, Huber) shows a lower test MAE than one
that chases them (L2).
"""

from __future__ import annotations

import math

import torch

from lossforge.contract import Task
from lossforge.data.base import DataSplits
from lossforge.data.partition import seeded_generator, split_indices
from lossforge.data.samples import Split
from lossforge.data.standardize import Standardizer, standardize_features


def _check_positive_int(value: int, parameter: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected `{parameter}` to be a positive int, got {value!r}")


def regression_outliers(
    *,
    seed: int,
    num_samples: int = 1000,
    num_features: int = 8,
    noise: float = 0.1,
    outlier_fraction: float = 0.2,
    outlier_scale: float = 10.0,
    symmetric_outliers: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """A linear problem $y = x \\cdot w + \\epsilon$ whose *training* targets contain outliers.

    $$
    x \\sim \\mathcal{N}(0, I_F), \\quad \\|w\\| = 1, \\quad \\epsilon \\sim \\mathcal{N}(0, \\sigma^2),
    \\quad \\tilde y_i = y_i + s_i \\, u_i \\, k \\, \\sqrt{1 + \\sigma^2} \\text{ for outliers}
    $$

    with $\\sigma$ = `noise`, $k$ = `outlier_scale`, $u_i \\sim U(0.5, 1.5)$ and
    $s_i = +1$ (one-sided, the default) or a random sign (`symmetric_outliers=True`). A random
    `outlier_fraction` of the training samples are outliers; val and test targets are clean, so early
    stopping and model selection see the true function. $\\sqrt{1 + \\sigma^2}$ is the standard
    deviation of clean targets, so `outlier_scale` is in target-std units.

    One-sided outliers are the default because they bias the mean: an L2 fit shifts by about
    `outlier_fraction * outlier_scale` standard deviations, while the median (L1) barely moves. With
    symmetric outliers the mean is unbiased and L2 only becomes noisier.

    Features are standardised with training statistics. Targets are left in their generated units (clean
    std ≈ 1 already): standardising them with training statistics would let the outliers set the scale.
    So val/test MAE is in the units of the clean function and comparable across losses. The seed draws the
    problem (`x`, `w`, noise), the split and the outliers; changing only the outlier parameters keeps
    the features, the split and every clean target.

    Args:
        seed: seeds the data, the split and the outliers.
        num_samples: total number of samples over the three splits.
        num_features: $F$, the input dimension.
        noise: $\\sigma$, the standard deviation of the Gaussian noise on every target, >= 0.
        outlier_fraction: share of the training samples that are outliers, in [0, 1).
        outlier_scale: $k$, the mean outlier offset in units of the clean target std, >= 0.
        symmetric_outliers: random-sign offsets instead of one-sided (positive) ones.
        val_fraction: share of the samples for validation.
        test_fraction: share of the samples for testing.

    Examples:
        >>> data = regression_outliers(seed=0)
        >>> data.task.name, data.num_outputs, data.input_dim, len(data.train), len(data.val), len(data.test)
        ('REGRESSION', 1, 8, 700, 150, 150)
        >>> bool(data.train.targets.max() > 4), bool(data.test.targets.max() < 4)
        (True, True)
    """
    _check_positive_int(num_samples, "num_samples")
    _check_positive_int(num_features, "num_features")
    if not noise >= 0:
        raise ValueError(f"Expected `noise` >= 0 (a standard deviation), got {noise!r}")
    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"Expected `outlier_fraction` in [0, 1), got {outlier_fraction!r}")
    if not outlier_scale >= 0:
        raise ValueError(f"Expected `outlier_scale` >= 0 (in target standard deviations), got {outlier_scale!r}")

    generator = seeded_generator(seed)
    features = torch.randn(num_samples, num_features, generator=generator)  # (N, F)
    weights = torch.randn(num_features, generator=generator)
    weights = weights / weights.norm()  # unit norm: the clean signal has variance 1 whatever F is
    targets = features @ weights + noise * torch.randn(num_samples, generator=generator)  # (N,)
    everything = Split(features, targets)
    train_index, val_index, test_index = split_indices(
        num_samples, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    train, val, test = (everything.subset(index) for index in (train_index, val_index, test_index))

    # drawn last, so the outlier settings never change the clean data or the split
    num_outliers = round(outlier_fraction * len(train))
    positions = torch.randperm(len(train), generator=generator)[:num_outliers]
    magnitudes = torch.empty(num_outliers).uniform_(0.5, 1.5, generator=generator)
    signs = torch.ones(num_outliers)
    if symmetric_outliers:
        signs = torch.randint(0, 2, (num_outliers,), generator=generator).float() * 2 - 1
    offsets = signs * magnitudes * outlier_scale * math.sqrt(1 + noise**2)
    train = Split(train.features, train.targets.index_add(0, positions, offsets))

    train, val, test = standardize_features(train, val, test)
    return DataSplits("regression_outliers", Task.REGRESSION, train, val, test, num_outputs=1)


def diabetes(*, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> DataSplits:
    """scikit-learn's bundled diabetes regression set (442 patients, 10 features; no download).

    The raw (unscaled) features are standardised with training statistics — scikit-learn's pre-scaled
    version uses statistics of all 442 rows, which would leak val/test into training. Targets (disease
    progression after one year, roughly 25–346) are standardised with the training mean and std too, so
    losses with scale-dependent parameters (Huber's delta) behave as on unit-scale data; an MAE reported on
    this dataset is in training-std units (multiply by about 77 for the original units).

    Args:
        seed: seeds the split.
        val_fraction: share of the samples for validation.
        test_fraction: share of the samples for testing.

    Examples:
        >>> data = diabetes(seed=0)
        >>> data.task.name, data.num_outputs, data.input_dim, len(data.train), len(data.val), len(data.test)
        ('REGRESSION', 1, 10, 310, 66, 66)
        >>> train_targets = data.train.targets
        >>> abs(train_targets.mean().item()) < 1e-5, round(train_targets.std(unbiased=False).item(), 3)
        (True, 1.0)
    """
    from sklearn.datasets import load_diabetes  # deferred: importing lossforge.data stays cheap

    bunch = load_diabetes(scaled=False)
    features = torch.as_tensor(bunch.data, dtype=torch.float32)  # (442, 10)
    targets = torch.as_tensor(bunch.target, dtype=torch.float32)  # (442,)
    everything = Split(features, targets)
    indices = split_indices(len(targets), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    train, val, test = standardize_features(*(everything.subset(index) for index in indices))
    scaler = Standardizer.fit(train.targets)
    train, val, test = (Split(split.features, scaler(split.targets)) for split in (train, val, test))
    return DataSplits("diabetes", Task.REGRESSION, train, val, test, num_outputs=1)
