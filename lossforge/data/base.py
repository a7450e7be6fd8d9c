"""What every dataset shares: the `Split`/`DataSplits` types, seeded splitting, standardisation fitted
on train only, and validators that explain what is wrong with a dataset.

A dataset is a function `name(*, seed, **params)` returning `DataSplits` or anything
[lossforge.data.adapter][] turns into one. `DataSplits` validates itself when it is built, so a dataset
that reaches training has finite float32 (or `uint8` image) features of one per-sample shape, targets of
the dtype and shape its task needs, labels in range and no empty split. The validators are plain functions and work on
tensors from anywhere:

```pycon
>>> validate_targets(torch.tensor([0, 3]), task=Task.MULTICLASS, num_outputs=3,
...                  dataset="toy")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: dataset 'toy', train split: multiclass targets must be class indices in [0, 3), got 1 value(s)...

```
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy
import torch
from torch import Tensor

from lossforge.contract import DATASET_TASKS, Task
from lossforge.tasks import spec_for
from lossforge.tasks.base import count_non_finite


@dataclass(frozen=True, eq=False)  # eq=False: `==` on tensors is elementwise, not a truth value
class Split:
    """One split of a dataset: features and the targets the task needs.

    Shape:
        - features: $(N, *S)$ float32 for any per-sample shape $S$ (`(F,)` for tables), or
          `uint8` images $(N, C, H, W)$, converted to float and normalised on the training device.
        - targets: multiclass/binary $(N,)$ int64 class index (binary: 0/1); multilabel
          $(N, K)$ float32 in {0, 1}; regression $(N,)$ or $(N, D)$ float32 (what each
          task accepts is its `TaskSpec.check_targets`).

    Examples:
        >>> split = Split(torch.zeros(4, 2), torch.tensor([0, 1, 1, 0]))
        >>> len(split)
        4
        >>> len(split.subset(torch.tensor([0, 2])))
        2
    """

    features: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def subset(self, indices: Tensor) -> Split:
        """The samples at `indices` (an int64 index tensor), as a new `Split`."""
        return Split(self.features[indices], self.targets[indices])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        return tuple(int(size) for size in self.features.shape[1:])

    @property
    def dtype(self) -> torch.dtype:
        """The features' dtype (float32, or uint8 images)."""
        return self.features.dtype

    def head(self, count: int) -> Tensor:
        """The first `count` samples' features, `(count, *sample_shape)`."""
        return self.features[:count]


class _Samples(torch.utils.data.Dataset):
    """A streamed split's dataset as lossforge's loaders read it: `(features tensor, target)` per index,
    the target taken from the split's `targets` (so its dtype is the task's, whatever the dataset returns)."""

    def __init__(self, dataset: Any, targets: Tensor) -> None:
        self.dataset, self.targets = dataset, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return torch.as_tensor(numpy.asarray(self.dataset[index][0])), self.targets[index]


@dataclass(frozen=True, eq=False)
class StreamedSplit:
    """A split whose samples stay where the dataset keeps them (files on disk): a `torch.utils.data.Dataset`
    read by DataLoader workers batch by batch, with all of its targets held in memory (samplers, class weights
    and class-disjoint splits read them without decoding a sample).

    Shape:
        - each sample: `sample_shape` of `dtype` (float32, or uint8 images).
        - targets: as [Split][lossforge.data.base.Split]'s.

    Examples:
        >>> samples = [(torch.full((1, 2, 2), i, dtype=torch.uint8), i % 2) for i in range(4)]
        >>> split = StreamedSplit.of(samples, torch.tensor([0, 1, 0, 1]))
        >>> len(split), split.sample_shape, split.dtype, tuple(split.head(3).shape)
        (4, (1, 2, 2), torch.uint8, (3, 1, 2, 2))
    """

    dataset: Any  # a map-style Dataset: dataset[i] -> (sample, target)
    targets: Tensor
    sample_shape: tuple[int, ...]
    dtype: torch.dtype
    num_workers: int = 0  # DataLoader worker processes that decode it

    @classmethod
    def of(cls, dataset: Any, targets: Tensor, *, num_workers: int = 0) -> StreamedSplit:
        """A streamed split of `dataset`; its first sample gives the shape and dtype."""
        first = torch.as_tensor(numpy.asarray(dataset[0][0])) if len(targets) else torch.zeros(0)
        return cls(dataset, targets, tuple(int(size) for size in first.shape), first.dtype, num_workers)

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: Tensor) -> StreamedSplit:
        """The samples at `indices`, still streamed."""
        chosen = torch.utils.data.Subset(self.dataset, indices.tolist())
        return StreamedSplit(chosen, self.targets[indices], self.sample_shape, self.dtype, self.num_workers)

    def head(self, count: int) -> Tensor:
        """The first `count` samples, decoded and stacked, `(count, *sample_shape)`."""
        samples = _Samples(self.dataset, self.targets)
        return torch.stack([samples[index][0] for index in range(min(count, len(self)))])

    def samples(self) -> torch.utils.data.Dataset:
        """The dataset as lossforge's loaders read it: `(features, target)` tensors per index."""
        return _Samples(self.dataset, self.targets)


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


# -- splitting -------------------------------------------------------------------------------------------
def check_fraction(name: str, value: float) -> None:
    """Raise a `ValueError` unless the split fraction `value` is strictly between 0 and 1.

    ```pycon
    >>> check_fraction("val_fraction", 15)
    Traceback (most recent call last):
    ...
    ValueError: Expected `val_fraction` in (0, 1) (a share of the samples, e.g. 0.15), got 15

    ```
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ValueError(f"Expected `{name}` in (0, 1) (a share of the samples, e.g. 0.15), got {value!r}")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise a `ValueError` unless both fractions are in (0, 1) and leave something to train on.

    ```pycon
    >>> check_fractions(0.15, 0.15)
    >>> check_fractions(0.5, 0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Expected val_fraction + test_fraction < 1 so that some data is left to train on, got 0.5 + ...

    ```
    """
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            "Expected val_fraction + test_fraction < 1 so that some data is left to train on, got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU `torch.Generator` seeded with `seed`, so that a dataset never touches the global RNG.

    ```pycon
    >>> torch.randint(10, (3,), generator=seeded_generator(0)).tolist() == torch.randint(
    ...     10, (3,), generator=seeded_generator(0)).tolist()
    True

    ```
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"Expected `seed` to be an int, got {seed!r} ({type(seed).__name__})")
    return torch.Generator().manual_seed(seed)


def _apportion(counts: list[int], fraction: float, capacity: list[int], generator: torch.Generator) -> list[int]:
    """Split `round(sum(counts) * fraction)` samples over groups in proportion to `counts`.

    Largest-remainder rounding keeps the total exact (per-group rounding can leave a small split empty);
    ties are broken in a seeded random order so that no class is always the one that gets the extra sample.
    """
    total = min(round(sum(counts) * fraction), sum(capacity))
    ideal = [count * fraction for count in counts]
    given = [min(math.floor(share), cap) for share, cap in zip(ideal, capacity, strict=True)]
    shuffled = torch.randperm(len(counts), generator=generator).tolist()
    order = sorted(shuffled, key=lambda group: given[group] - ideal[group])  # stable: keeps random ties
    while sum(given) < total:
        for group in order:
            if sum(given) == total:
                break
            if given[group] < capacity[group]:
                given[group] += 1
    return given


def partition_indices(
    strata: Tensor, fractions: dict[str, float], *, seed: int, rest: str = "train"
) -> dict[str, Tensor]:
    """Seeded, stratified partition of `range(N)` into named parts of the given fractions plus the rest.

    Each stratum is shuffled with a generator seeded by `seed`; part `name` gets
    `round(N * fractions[name])` samples in total, spread over strata in proportion to their sizes, and
    `rest` gets what is left. Every part must be non-empty. Each returned tensor is sorted.

    Examples:
        >>> labels = torch.tensor([0] * 6 + [1] * 2)
        >>> parts = partition_indices(labels, {"val": 0.5}, seed=0)
        >>> labels[parts["val"]].tolist(), len(parts["train"])
        ([0, 0, 0, 1], 4)
    """
    if strata.dim() != 1:
        raise ValueError(f"Expected `strata` of shape (N,), one group per sample, got {tuple(strata.shape)}")
    for name, fraction in fractions.items():
        check_fraction(f"{name}_fraction", fraction)
    if sum(fractions.values()) >= 1.0:
        raise ValueError(f"Expected fractions that sum to less than 1, got {fractions}")
    num_samples = len(strata)
    generator = seeded_generator(seed)
    groups = [torch.nonzero(strata == group).flatten() for group in torch.unique(strata)]
    groups = [members[torch.randperm(len(members), generator=generator)] for members in groups]
    counts = [len(members) for members in groups]
    left = list(counts)
    pieces: dict[str, list[Tensor]] = {name: [] for name in (*fractions, rest)}
    for name, fraction in fractions.items():
        taken = _apportion(counts, fraction, left, generator)
        for index, (members, start, size) in enumerate(zip(groups, left, taken, strict=True)):
            # take from the end of each shuffled stratum; the rest keeps the front
            pieces[name].append(members[start - size : start])
            left[index] -= size
    pieces[rest] = [members[:start] for members, start in zip(groups, left, strict=True)]
    result = {}
    for name, parts in pieces.items():
        indices = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
        if len(indices) == 0:
            shares = ", ".join(f"{key}_fraction={value}" for key, value in fractions.items())
            raise ValueError(
                f"Splitting {num_samples} samples with {shares} leaves the {name} split empty; use more "
                "samples or other fractions."
            )
        result[name] = indices.sort().values
    return result


def split_indices(
    num_samples: int,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strata: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded train/val/test indices, stratified by `strata` (e.g. class labels) when given.

    Val and test get `round(N * fraction)` samples each, spread over strata in proportion to their sizes
    (see [partition_indices][lossforge.data.base.partition_indices]). The same seed always gives the same indices.

    Args:
        num_samples: $N$, the number of samples to split.
        val_fraction: share of the samples in the validation split, in (0, 1).
        test_fraction: share of the samples in the test split, in (0, 1).
        seed: seeds the shuffle.
        strata: $(N,)$ int64 group of each sample; `None` splits without stratifying.

    Examples:
        >>> labels = torch.tensor([0] * 10 + [1] * 10)
        >>> train, val, test = split_indices(20, val_fraction=0.2, test_fraction=0.2, seed=0, strata=labels)
        >>> len(train), len(val), len(test)
        (12, 4, 4)
        >>> labels[test].bincount().tolist()  # stratified: both classes equally represented
        [2, 2]
    """
    check_fractions(val_fraction, test_fraction)
    if strata is None:
        strata = torch.zeros(num_samples, dtype=torch.int64)
    if strata.shape != (num_samples,):
        raise ValueError(f"Expected `strata` of shape ({num_samples},), got {tuple(strata.shape)}")
    parts = partition_indices(strata, {"test": test_fraction, "val": val_fraction}, seed=seed)
    return parts["train"], parts["val"], parts["test"]


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


# -- provenance ------------------------------------------------------------------------------------------
def split_fingerprint(split: Split | StreamedSplit) -> str:
    """SHA-256 (hex) over a split's targets and a content hash of its features — dtypes, shapes and bytes —
    so two runs that tested on the same examples log the same value (`data.test_digest`, docs/decisions.md
    §1), whatever their run seed. A streamed split is not decoded: its targets, sample shape and dtype are
    hashed with its dataset's `fingerprint` attribute when it has one (an image folder's file-list digest).

    ```pycon
    >>> a = Split(torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    >>> split_fingerprint(a) == split_fingerprint(Split(torch.zeros(3, 2), torch.tensor([0, 1, 0])))
    True
    >>> split_fingerprint(a) == split_fingerprint(Split(torch.ones(3, 2), torch.tensor([0, 1, 0])))
    False

    ```
    """
    features = hashlib.sha256()
    if isinstance(split, StreamedSplit):
        inner = split.dataset.dataset if isinstance(split.dataset, torch.utils.data.Subset) else split.dataset
        indices = getattr(split.dataset, "indices", None)
        features.update(f"{split.dtype}{split.sample_shape};{getattr(inner, 'fingerprint', '')};{indices}".encode())
        array = torch.zeros(0)
    else:
        array = split.features.detach().cpu().contiguous()
    features.update(f"{array.dtype}{tuple(array.shape)};".encode())
    features.update(array.flatten().view(torch.uint8).numpy().tobytes())
    digest = hashlib.sha256()
    targets = split.targets.detach().cpu().contiguous()
    digest.update(f"{targets.dtype}{tuple(targets.shape)};".encode())
    digest.update(targets.flatten().view(torch.uint8).numpy().tobytes())
    digest.update(features.digest())
    return digest.hexdigest()
