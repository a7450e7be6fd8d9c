"""The dataset registry: name → a function ``(*, seed, **params) -> DataSplits``.

Every dataset is seeded and split into train/val/test, validated when built (finite float32 features,
targets of the dtype and shape its task needs), and needs no download unless asked.

>>> list_datasets("digits*")
['digits', 'digits_binary', 'digits_imbalanced', 'digits_multilabel']
>>> data = build_dataset("digits_binary", seed=0, positive_digits=[0])
>>> data.task.name, data.num_outputs, data.input_dim
('BINARY', 1, 64)
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

# Modules, not their functions: `lossforge.data.digits` must stay the module, not the `digits` function.
from lossforge.contract import did_you_mean
from lossforge.data import digits as _digits
from lossforge.data import mnist as _mnist
from lossforge.data import regression as _regression
from lossforge.data.base import (
    DataSplits,
    Split,
    Standardizer,
    split_indices,
    standardize_features,
    validate_data_splits,
    validate_features,
    validate_split,
    validate_targets,
)
from lossforge.data.mnist import read_idx

__all__ = [
    "DATASETS",
    "DataSplits",
    "Split",
    "Standardizer",
    "build_dataset",
    "dataset_parameters",
    "list_datasets",
    "read_idx",
    "split_indices",
    "standardize_features",
    "validate_data_splits",
    "validate_features",
    "validate_split",
    "validate_targets",
]

#: Registry name → dataset function. Each takes keyword-only parameters, a required ``seed`` among them,
#: and has a matching ``conf/dataset/<name>.yaml``.
DATASETS: dict[str, Callable[..., DataSplits]] = {
    "digits": _digits.digits,
    "digits_imbalanced": _digits.digits_imbalanced,
    "digits_binary": _digits.digits_binary,
    "digits_multilabel": _digits.digits_multilabel,
    "regression_outliers": _regression.regression_outliers,
    "diabetes": _regression.diabetes,
    "mnist": _mnist.mnist,
}


def list_datasets(pattern: str = "*") -> list[str]:
    """Sorted names of the registered datasets matching the fnmatch ``pattern``.

    >>> list_datasets("*outlier*")
    ['regression_outliers']
    """
    return sorted(name for name in DATASETS if fnmatch.fnmatchcase(name, pattern))


def _lookup(name: str) -> Callable[..., DataSplits]:
    if name in DATASETS:
        return DATASETS[name]
    raise ValueError(
        f"Unknown dataset {name!r}.{did_you_mean(name, DATASETS)} Available datasets: {', '.join(list_datasets())}. "
        "A new dataset is a function (*, seed, **params) -> DataSplits added to lossforge.data.DATASETS."
    )


def dataset_parameters(name: str) -> dict[str, Any]:
    """Keyword parameters of dataset ``name`` → defaults (``inspect.Parameter.empty`` when required).

    >>> dataset_parameters("diabetes")
    {'seed': <class 'inspect._empty'>, 'val_fraction': 0.15, 'test_fraction': 0.15}
    """
    signature = inspect.signature(_lookup(name))
    return {
        parameter.name: parameter.default
        for parameter in signature.parameters.values()
        if parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def build_dataset(name: str, **params: Any) -> DataSplits:
    """Build the dataset registered as ``name`` with ``params`` (``seed`` is required).

    Unknown or missing parameters raise a ``ValueError`` that lists the accepted ones.

    >>> build_dataset("diabetes", seed=0, val_fracton=0.2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Dataset 'diabetes' has no parameter 'val_fracton'. Did you mean 'val_fraction'? Accepted...
    """
    function = _lookup(name)
    accepted = dataset_parameters(name)
    for key in params:
        if key not in accepted:
            raise ValueError(
                f"Dataset {name!r} has no parameter {key!r}.{did_you_mean(key, accepted, n=1)} "
                f"Accepted parameters: {', '.join(accepted)}."
            )
    missing = [key for key, default in accepted.items() if default is inspect.Parameter.empty and key not in params]
    if missing:
        raise ValueError(
            f"Dataset {name!r} needs {', '.join(missing)}; e.g. build_dataset({name!r}, seed=0). Every "
            "dataset takes an explicit seed so that its split is reproducible."
        )
    data = function(**params)
    if not isinstance(data, DataSplits):
        raise TypeError(f"Dataset {name!r} returned {type(data).__name__}; a dataset must return DataSplits.")
    return data
