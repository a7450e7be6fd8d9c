"""Standardisation fitted on the training split only: a `Standardizer` and the three splits' features
standardised with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lossforge.data.samples import Split


# -- standardisation -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Standardizer:
    """Subtracts a mean and divides by a standard deviation fitted on one tensor (the training split).

    A column that does not vary gets `std = 1`, so it becomes 0 instead of NaN.

    Examples:
        >>> train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
        >>> scaler = Standardizer.fit(train)
        >>> scaler(train)
        tensor([[-1.,  0.],
                [ 1.,  0.]])
        >>> scaler(torch.tensor([[5.0, 6.0]]))  # other splits use the train statistics
        tensor([[3., 1.]])
    """

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, values: Tensor, *, per_column: bool = True) -> Standardizer:
        """Fit on `values` ($(N,)$ or $(N, F)$): per column, or one scalar pair for all."""
        # float64 so that a constant column gives std exactly 0 rather than rounding noise
        data = values.double() if per_column else values.double().flatten()
        mean = data.mean(dim=0)
        std = data.std(dim=0, unbiased=False)
        constant = std <= 1e-12 * mean.abs().clamp_min(1.0)
        std = torch.where(constant, torch.ones_like(std), std)
        return cls(mean.to(values.dtype), std.to(values.dtype))

    def __call__(self, values: Tensor) -> Tensor:
        return (values - self.mean) / self.std


def standardize_features(
    train: Split, val: Split, test: Split, *, per_feature: bool = True
) -> tuple[Split, Split, Split]:
    """Standardise the features of all three splits with statistics fitted on `train` only.

    Fitting on val or test would leak their statistics into training. `per_feature=False` uses one mean
    and std for all features (images, where rarely-lit border pixels would otherwise explode).

    ```pycon
    >>> train, other = Split(torch.tensor([[0.0], [2.0]]), torch.tensor([0, 1])), Split(
    ...     torch.tensor([[4.0]]), torch.tensor([0]))
    >>> [split.features.flatten().tolist() for split in standardize_features(train, other, other)]
    [[-1.0, 1.0], [3.0], [3.0]]

    ```
    """
    scaler = Standardizer.fit(train.features, per_column=per_feature)
    return tuple(Split(scaler(split.features), split.targets) for split in (train, val, test))  # type: ignore[return-value]
