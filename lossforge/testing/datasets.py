"""The contract kit for datasets: every promise of [lossforge.contract.DatasetPlugin][], as named checks
(the same [lossforge.testing.Check][lossforge.testing.common.Check] values as for losses and miners, one pytest id per
check).

Dataset checks ([DATASET_CHECKS][lossforge.testing.datasets.DATASET_CHECKS]), on what the dataset returns for split seed
0:

* `check_dataset_declaration` — a callable taking the keyword `seed`, declaring a valid `task` (unless it
  returns lossforge's `DataSplits`);
* `check_dataset_splits` — lossforge's adapter reads it: three non-empty splits, one per-sample shape,
  features finite float32 (or `uint8` images), targets valid for the task
  ([validate_data_splits][lossforge.data.base.validate_data_splits]);
* `check_dataset_classes` — class tasks: every label of every split is below `num_outputs` (a class absent
  from train still counts), `class_names` match; a `class_disjoint` dataset's test classes are not in train;
* `check_dataset_reproducible` — the same split seed gives the same splits.

```pycon
>>> [check.name for check in dataset_checks("digits")][:2]
['check_dataset_declaration', 'check_dataset_splits']

```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from lossforge.contract import CLASS_LABEL_TASKS, RESERVED_DATASET_KEYS, ContractError, check_dataset_callable
from lossforge.data import DataSplits, Split, to_data_splits, validate_data_splits
from lossforge.registry import DATASETS
from lossforge.testing.common import Check, _provided_by


def dataset_names(pattern: str = "*", *, distribution: str | None = None) -> list[str]:
    """Registered dataset names matching `pattern`, optionally only those a given package provides.

    ```pycon
    >>> dataset_names("digits_b*", distribution="lossforge")
    ['digits_binary']

    ```
    """
    return [name for name in DATASETS.names(pattern) if _provided_by(DATASETS.info(name).distribution, distribution)]


# -- the checks ----------------------------------------------------------------------------------------------


class _Dataset:
    """A dataset under check: the callable, its label and the parameters to call it with."""

    def __init__(self, dataset: str | Callable[..., Any], params: Mapping[str, Any] | None) -> None:
        if isinstance(dataset, str):
            self.function, self.label = DATASETS.load(dataset), f"dataset {dataset!r}"
        else:
            self.function, self.label = dataset, f"dataset {getattr(dataset, '__name__', dataset)!r}"
        self.params = {key: value for key, value in dict(params or {}).items() if key not in RESERVED_DATASET_KEYS}
        self._built: DataSplits | None = None

    def build(self, seed: int = 0) -> DataSplits:
        result = self.function(seed=seed, **self.params)
        name = self.label.removeprefix("dataset ").strip("'")
        return to_data_splits(result, name=name, declared=self.function)

    @property
    def data(self) -> DataSplits:
        if self._built is None:
            self._built = self.build(0)
        return self._built


def check_dataset_declaration(subject: _Dataset) -> None:
    """A callable with the keyword `seed` and a valid `task` declaration."""
    try:
        check_dataset_callable(subject.function)
    except ContractError as error:
        raise AssertionError(f"{subject.label}: {error}") from None


def check_dataset_splits(subject: _Dataset) -> None:
    """lossforge reads what it returns: three valid, non-empty splits."""
    try:
        validate_data_splits(subject.data)
    except ValueError as error:
        raise AssertionError(f"{subject.label}: {error}") from None


def check_dataset_classes(subject: _Dataset) -> None:
    """Class labels fit `num_outputs` in every split; a class-disjoint dataset's test classes are new."""
    data = subject.data
    if data.task not in CLASS_LABEL_TASKS:
        return
    for name, split in data.splits().items():
        largest = int(split.targets.max())
        if data.task == "multiclass" and largest >= data.num_outputs:
            raise AssertionError(
                f"{subject.label}: the {name} split has label {largest} but num_outputs is {data.num_outputs}; "
                "declare `num_classes` (a class absent from train still counts)"
            )
    if data.class_disjoint:
        shared = set(data.train.targets.tolist()) & set(data.test.targets.tolist())
        if shared:
            raise AssertionError(
                f"{subject.label}: declares class-disjoint splits, but train and test share {sorted(shared)[:5]}"
            )


def check_dataset_reproducible(subject: _Dataset) -> None:
    """The same split seed gives the same splits (docs/decisions.md §1)."""
    again = subject.build(0)
    for name, split in subject.data.splits().items():
        other = again.splits()[name]
        # a streamed split is compared on its targets and first samples (decoding it whole could take hours)
        count = len(split) if isinstance(split, Split) else min(len(split), 16)
        same_targets = split.targets.shape == other.targets.shape and torch.equal(split.targets, other.targets)
        if not (same_targets and torch.equal(split.head(count), other.head(count))):
            raise AssertionError(f"{subject.label}: split seed 0 gave a different {name} split the second time")


DATASET_CHECKS: tuple[Callable[[_Dataset], None], ...] = (
    check_dataset_declaration,
    check_dataset_splits,
    check_dataset_classes,
    check_dataset_reproducible,
)


def dataset_checks(dataset: str | Callable[..., Any], *, params: Mapping[str, Any] | None = None) -> list[Check]:
    """The checks of one dataset (a registry name or the callable), called with `params`."""
    subject = _Dataset(dataset, params)
    component = dataset if isinstance(dataset, str) else getattr(dataset, "__name__", "dataset")
    return [Check(component, check.__name__, _bind(check, subject)) for check in DATASET_CHECKS]


def check_dataset(dataset: str | Callable[..., Any], *, params: Mapping[str, Any] | None = None) -> None:
    """Run every dataset check; the first broken promise raises `AssertionError`."""
    for check in dataset_checks(dataset, params=params):
        check()


def _bind(check: Callable[[Any], None], subject: Any) -> Callable[[], None]:
    return lambda: check(subject)
