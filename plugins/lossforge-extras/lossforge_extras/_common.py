"""What the extras' losses share: `reduction`, parameter checks, and input errors that name the loss.

lossforge has the same helpers in `lossforge.losses.base`; a plugin keeps its own so that it runs without
lossforge installed.
"""

from __future__ import annotations

import math

from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


class InputError(ValueError):
    """A prediction or target of the wrong shape, dtype or values (a `ValueError`, as lossforge expects)."""


def check_reduction(loss_name: str, reduction: str) -> str:
    """Return `reduction` if it is `"mean"`, `"sum"` or `"none"`; else raise a `ValueError`.

    ```pycon
    >>> check_reduction("asymmetric", "sum")
    'sum'
    >>> check_reduction("asymmetric", "avg")
    Traceback (most recent call last):
    ...
    ValueError: asymmetric: expected `reduction` in ['mean', 'sum', 'none'], got 'avg'

    ```
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"{loss_name}: expected `reduction` in {list(REDUCTIONS)}, got {reduction!r}")
    return reduction


def check_at_least(loss_name: str, parameter: str, value: float, lower: float, *, strict: bool = False) -> float:
    """Return `value` as a float if it is `>= lower` (`> lower` when `strict`) and finite.

    ```pycon
    >>> check_at_least("info_nce", "temperature", 0.1, 0.0, strict=True)
    0.1
    >>> check_at_least("asymmetric", "gamma_negative", -1, 0.0)
    Traceback (most recent call last):
    ...
    ValueError: asymmetric: expected `gamma_negative` >= 0.0, got -1

    ```
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{loss_name}: expected `{parameter}` to be a number, got {value!r}")
    valid = value > lower if strict else value >= lower  # False for NaN as well
    if not valid or not math.isfinite(value):
        raise ValueError(f"{loss_name}: expected `{parameter}` {'>' if strict else '>='} {lower}, got {value}")
    return float(value)


def reduce(values: Tensor, reduction: str) -> Tensor:
    """`values.mean()`, `values.sum()` or `values` itself; the mean of nothing is an attached 0.

    ```pycon
    >>> import torch
    >>> reduce(torch.tensor([1.0, 2.0, 6.0]), "mean")
    tensor(3.)
    >>> reduce(torch.zeros(0), "mean")
    tensor(0.)

    ```
    """
    if reduction == "none":
        return values
    if reduction == "sum" or values.numel() == 0:
        return values.sum()  # an empty sum is 0 and still connected to the graph: no NaN from 0 / 0
    return values.mean()


def shape(tensor: Tensor) -> str:
    """A tensor's shape as error messages print it.

    ```pycon
    >>> import torch
    >>> shape(torch.zeros(8, 5)), shape(torch.zeros(8))
    ('(8, 5)', '(8,)')

    ```
    """
    return "(" + ", ".join(str(size) for size in tensor.shape) + ("," if tensor.dim() == 1 else "") + ")"
