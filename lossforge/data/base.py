"""A dataset ready for training, `DataSplits`, and the validators that explain what is wrong with a dataset.

A dataset is a function `name(*, seed, **params)` returning `DataSplits` or anything
[lossforge.data.adapter][] turns into one. `DataSplits` validates itself when it is built, so a dataset
that reaches training has finite float32 (or `uint8` image) features of one per-sample shape, targets of
the dtype and shape its task needs, labels in range and no empty split. The validators are plain functions and work on
tensors from anywhere.

This module holds `DataSplits` and its validators; the rest is beside it, one job a module:
[samples][lossforge.data.samples] (`Split`, `StreamedSplit`, a split's fingerprint),
[partition][lossforge.data.partition] (seeded splitting) and [standardize][lossforge.data.standardize]
(standardisation fitted on train). `Split`, `StreamedSplit`, `split_fingerprint`, `Standardizer` and
`partition_indices` are still importable from here.

```pycon
>>> validate_targets(torch.tensor([0, 3]), task=Task.MULTICLASS, num_outputs=3,
...                  dataset="toy")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: dataset 'toy', train split: multiclass targets must be class indices in [0, 3), got 1 value(s)...

```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lossforge.contract import DATASET_TASKS, Task
from lossforge.data.partition import partition_indices
from lossforge.data.samples import Split, StreamedSplit, split_fingerprint
from lossforge.data.standardize import Standardizer
from lossforge.tasks import spec_for
from lossforge.tasks.base import count_non_finite

__all__ = [
    "DataSplits",
    "Split",
    "Standardizer",
    "StreamedSplit",
    "partition_indices",
    "split_fingerprint",
    "validate_data_splits",
    "validate_features",
    "validate_split",
    "validate_targets",
]


@dataclass(frozen=True, eq=False)
class DataSplits:
    """A dataset ready for training: three validated splits and what the model needs to know.

    Building one runs [validate_data_splits][lossforge.data.base.validate_data_splits], so an instance is always valid.

    Examples:
        >>> train = Split(torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> small = Split(torch.randn(3, 3), torch.tensor([0, 1, 2]))
        >>> data = DataSplits("toy", Task.MULTICLASS, train, small, small, num_outputs=3,
        ...                   class_names=("a", "b", "c"))
        >>> data.input_dim
        3
    """

    name: str
    task: Task  # one of lossforge.contract.DATASET_TASKS
    train: Split | StreamedSplit
    val: Split | StreamedSplit
    test: Split | StreamedSplit
    num_outputs: int  # classes (multiclass), 1 (binary), K labels (multilabel), target dim (regression)
    class_names: tuple[str, ...] = ()  # classes (binary: negative, positive) or labels; () for regression
    mean: tuple[float, ...] = ()  # images: per-channel mean, applied on the device after uint8 / 255; () none
    std: tuple[float, ...] = ()  # images: per-channel std, as `mean`
    class_disjoint: bool = False  # the test classes are not the training classes (metric learning)
    provenance: dict[str, str] = field(default_factory=dict)  # logged as MLflow tags data.<key> (a file's SHA-256)

    def __post_init__(self) -> None:
        validate_data_splits(self)
        object.__setattr__(self, "task", Task(self.task))  # a plain string from a third-party dataset too

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape: `(F,)` for a table, `(C, H, W)` for images."""
        return self.train.sample_shape

    @property
    def input_dim(self) -> int:
        """Number of values per sample (the product of [input_shape][lossforge.data.base.DataSplits.input_shape])."""
        return math.prod(self.input_shape)

    def splits(self) -> dict[str, Split | StreamedSplit]:
        """`{"train": ..., "val": ..., "test": ...}`, for loops over the three splits."""
        return {"train": self.train, "val": self.val, "test": self.test}


# -- validation ------------------------------------------------------------------------------------------
def _where(dataset: str, split: str) -> str:
    return f"dataset {dataset!r}, {split} split"


def validate_features(features: Tensor, *, dataset: str = "<unnamed>", split: str = "train") -> None:
    """Raise a `ValueError` unless `features` is a non-empty $(N, *S)$ tensor: finite float32, or
    `uint8` (images, normalised on the device).

    ```pycon
    >>> validate_features(torch.tensor([[0.0, float("nan")]]),
    ...                   dataset="toy", split="val")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dataset 'toy', val split: features contain 1 NaN and 0 infinite value(s) out of 2. One NaN...

    ```
    """
    where = _where(dataset, split)
    if not isinstance(features, Tensor):
        raise ValueError(f"{where}: features must be a torch.Tensor, got {type(features).__name__}")
    if features.dim() < 2:
        raise ValueError(
            f"{where}: features must have shape (N, *sample_shape), got {tuple(features.shape)}; a table with one "
            "column is (N, 1) (features[:, None])."
        )
    if features.shape[0] == 0:
        raise ValueError(f"{where}: the split is empty (0 samples); every split needs at least one sample.")
    if features[0].numel() == 0:
        raise ValueError(f"{where}: features have 0 values per sample; every sample needs at least one feature.")
    if features.dtype == torch.uint8:
        return  # images: every byte is a valid pixel
    if features.dtype != torch.float32:
        raise ValueError(
            f"{where}: features must be float32 (or uint8 images), got {features.dtype}; convert with features.float()."
        )
    bad = count_non_finite(features)
    if bad is not None:
        raise ValueError(
            f"{where}: features contain {bad}. One NaN turns every loss and gradient into NaN: drop or "
            "impute these values (e.g. torch.nan_to_num) before training."
        )


def _check_task(task: str, where: str) -> Task:
    if task not in DATASET_TASKS:
        raise ValueError(f"{where}: unknown task {task!r}; expected one of {[str(t) for t in DATASET_TASKS]}")
    return Task(task)


def validate_targets(
    targets: Tensor, *, task: str, num_outputs: int, dataset: str = "<unnamed>", split: str = "train"
) -> None:
    """Raise a `ValueError` unless `targets` has the dtype, shape and values `task` needs.

    Multiclass: $(N,)$ int64 in `[0, num_outputs)`; binary: $(N,)$ int64 in {0, 1};
    multilabel: $(N, K)$ float32 in {0, 1} with `K = num_outputs`; regression: finite float32,
    $(N,)$ when `num_outputs == 1` or $(N, D)$ with `D = num_outputs`. The rules per task
    are its `TaskSpec.check_targets` ([lossforge.tasks][]).

    ```pycon
    >>> validate_targets(torch.tensor([0.0, 1.0]), task=Task.BINARY, num_outputs=1,
    ...                  dataset="toy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dataset 'toy', train split: binary targets must be torch.int64, got torch.float32; store...

    ```
    """
    where = _where(dataset, split)
    spec = spec_for(_check_task(task, where))
    if not isinstance(targets, Tensor):
        raise ValueError(f"{where}: targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.shape[:1] == (0,) or targets.numel() == 0:
        raise ValueError(f"{where}: the split has no targets (0 samples); every split needs at least one.")
    problem = spec.check_targets(targets, num_outputs)
    if problem:
        raise ValueError(f"{where}: {problem}")


def validate_split(
    split: Split, *, task: str, num_outputs: int, dataset: str = "<unnamed>", split_name: str = "train"
) -> None:
    """Validate the features and targets of one split, and that they describe the same samples.

    ```pycon
    >>> validate_split(Split(torch.zeros(3, 2), torch.tensor([0, 1])),
    ...                task=Task.BINARY, num_outputs=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dataset '<unnamed>', train split: 3 feature rows but 2 targets; each sample needs exactly...

    ```
    """
    validate_features(split.features, dataset=dataset, split=split_name)
    validate_targets(split.targets, task=task, num_outputs=num_outputs, dataset=dataset, split=split_name)
    if split.targets.shape[0] != split.features.shape[0]:
        raise ValueError(
            f"{_where(dataset, split_name)}: {split.features.shape[0]} feature rows but "
            f"{split.targets.shape[0]} targets; each sample needs exactly one target row."
        )


def validate_data_splits(data: DataSplits) -> None:
    """Validate a whole dataset: its task, `num_outputs`, `class_names` and all three splits.

    `DataSplits` calls this when it is built; call it yourself on a dataset assembled elsewhere.
    """
    label = f"dataset {data.name!r}"
    spec = spec_for(_check_task(data.task, label))
    if isinstance(data.num_outputs, bool) or not isinstance(data.num_outputs, int) or data.num_outputs < 1:
        raise ValueError(f"{label}: num_outputs must be a positive int, got {data.num_outputs!r}")
    problem = spec.check_num_outputs(data.num_outputs)
    if problem:
        raise ValueError(f"{label}: {problem}")
    wanted = spec.num_class_names(data.num_outputs)
    if data.class_names and len(data.class_names) != wanted:
        raise ValueError(
            f"{label}: a {data.task} task with num_outputs={data.num_outputs} needs {wanted} class names "
            f"(or none), got {len(data.class_names)}: {list(data.class_names)}"
        )
    for split_name, split in data.splits().items():
        if isinstance(split, StreamedSplit):  # its samples are checked as they are decoded, not all up front
            validate_targets(
                split.targets, task=data.task, num_outputs=data.num_outputs, dataset=data.name, split=split_name
            )
            if split.dtype not in (torch.float32, torch.uint8):
                raise ValueError(
                    f"{_where(data.name, split_name)}: streamed samples must be float32 or uint8, got {split.dtype}"
                )
            continue
        if not isinstance(split, Split):
            raise ValueError(f"{label}: `{split_name}` must be a Split, got {type(split).__name__}")
        validate_split(split, task=data.task, num_outputs=data.num_outputs, dataset=data.name, split_name=split_name)
    shapes = {split_name: split.sample_shape for split_name, split in data.splits().items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{label}: every split needs the same per-sample shape (features), got {shapes}")
    dtypes = {split_name: str(split.dtype) for split_name, split in data.splits().items()}
    if len(set(dtypes.values())) != 1:
        raise ValueError(f"{label}: every split needs the same feature dtype, got {dtypes}")
    if len(data.mean) != len(data.std):
        raise ValueError(f"{label}: `mean` and `std` need one value per channel each, got {data.mean} and {data.std}")
    if data.mean and data.input_shape[0] != len(data.mean):
        raise ValueError(
            f"{label}: `mean`/`std` give {len(data.mean)} channels, but samples of shape {data.input_shape} have "
            f"{data.input_shape[0]}"
        )
    if any(value <= 0 for value in data.std):
        raise ValueError(f"{label}: every `std` must be > 0, got {data.std}")
