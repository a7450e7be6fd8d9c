"""Datasets, named in configs by registry name (entry-point group `lossforge.datasets`).

A dataset is a callable `(*, seed, **params)` — `seed` being the **split seed** (`dataset.split_seed`,
docs/decisions.md §1) — returning `DataSplits` or anything [lossforge.data.adapter.to_data_splits][]
reads (a mapping of arrays of any per-sample shape, a Dataset per split, a LightningDataModule). lossforge's
own datasets are entry points like a plugin's. A built dataset is cached for the process
([load_dataset][lossforge.data.load_dataset]), so the trials and seed runs of one comparison do not build it again.

```pycon
>>> [name for name in list_datasets("digits*")]
['digits', 'digits_binary', 'digits_imbalanced', 'digits_multilabel']
>>> data = build_dataset("digits_binary", seed=0, positive_digits=[0])
>>> data.task.name, data.num_outputs, data.input_dim
('BINARY', 1, 64)

```
"""

from __future__ import annotations

import inspect
import json
from collections import OrderedDict
from typing import Any

from lossforge.contract import RESERVED_DATASET_KEYS, did_you_mean
from lossforge.data.adapter import DatasetContractError, to_data_splits
from lossforge.data.base import DataSplits, validate_data_splits, validate_features, validate_split, validate_targets
from lossforge.data.mnist import read_idx
from lossforge.data.partition import split_indices
from lossforge.data.samples import Split
from lossforge.data.splits import class_disjoint_data_splits
from lossforge.data.standardize import Standardizer, standardize_features
from lossforge.registry import DATASETS, RegistryError

__all__ = [
    "DATASETS",
    "DataSplits",
    "DatasetContractError",
    "Split",
    "Standardizer",
    "build_dataset",
    "dataset_parameters",
    "list_datasets",
    "load_dataset",
    "read_idx",
    "split_indices",
    "standardize_features",
    "to_data_splits",
    "validate_data_splits",
    "validate_features",
    "validate_split",
    "validate_targets",
]


def list_datasets(pattern: str = "*") -> list[str]:
    """Sorted names of the registered datasets matching the fnmatch `pattern`.

    ```pycon
    >>> list_datasets("*outlier*")
    ['regression_outliers']

    ```
    """
    return DATASETS.names(pattern)


def _lookup(name: str) -> Any:
    try:
        return DATASETS.load(name)
    except RegistryError as error:
        raise ValueError(str(error)) from None


def dataset_parameters(name: str) -> dict[str, Any]:
    """Keyword parameters of dataset `name` → defaults (`inspect.Parameter.empty` when required).

    ```pycon
    >>> dataset_parameters("diabetes")
    {'seed': <class 'inspect._empty'>, 'val_fraction': 0.15, 'test_fraction': 0.15}

    ```
    """
    signature = inspect.signature(_lookup(name))
    return {
        parameter.name: parameter.default
        for parameter in signature.parameters.values()
        if parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def build_dataset(name: str, **params: Any) -> DataSplits:
    """Build the dataset registered as `name` with `params` (`seed`, the split seed, is required).

    Unknown or missing parameters raise a `ValueError` that lists the accepted ones.

    ```pycon
    >>> build_dataset("diabetes", seed=0, val_fracton=0.2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Dataset 'diabetes' has no parameter 'val_fracton'. Did you mean 'val_fraction'? Accepted...

    ```
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
    return to_data_splits(function(**params), name=name, declared=function)


_BUILT: OrderedDict[tuple[str, int, str, bool], DataSplits] = OrderedDict()
"""Datasets built in this process, newest last: `(name, split seed, parameters as JSON, re-split by class)`
→ `DataSplits`."""
CACHE_SIZE = 2
"""How many built datasets the process keeps (a comparison uses one; images can be large)."""


def load_dataset(config: dict[str, Any]) -> DataSplits:
    """The dataset a config node describes (`{"name": ..., "split_seed": ..., <params>}`), built once per
    process: the trials and seed runs of one comparison share it (the run seed is not part of the key — it
    never changes the data). The reserved keys (`split_seed`, `augment`, `class_disjoint`) are not passed to
    the dataset; `class_disjoint: true` re-splits a dataset that is not class-disjoint already by class
    ([lossforge.data.splits.class_disjoint_data_splits][]: test on the last half of the classes)."""
    values = dict(config)
    name = values.pop("name")
    split_seed = values.get("split_seed")
    split_seed = 0 if split_seed is None else int(split_seed)
    own = {key: value for key, value in values.items() if key not in RESERVED_DATASET_KEYS}
    by_class = bool(values.get("class_disjoint"))
    key = (name, split_seed, json.dumps(own, sort_keys=True, default=str), by_class)
    if key in _BUILT:
        _BUILT.move_to_end(key)
        return _BUILT[key]
    data = build_dataset(name, seed=split_seed, **own)
    if by_class and not data.class_disjoint:
        data = class_disjoint_data_splits(data, seed=split_seed)
    _BUILT[key] = data
    while len(_BUILT) > CACHE_SIZE:
        _BUILT.popitem(last=False)
    return data


def clear_cache() -> None:
    """Forget the datasets this process built (tests; a dataset whose files changed on disk)."""
    _BUILT.clear()
