"""Class-disjoint metric-learning splits for any class-labelled dataset.

Metric learning is judged on classes the embedding never saw ("A Metric Learning Reality Check"): train
and validate on some classes, test on the others. CUB-200-2011, Cars196 and SOP come split that way; any
other multiclass dataset is re-partitioned here, from the split seed: every sample of every split is
pooled, the classes are divided into training classes and test classes — the first half of the sorted
class ids (the benchmarks' convention) or a seeded random half — the test split gets every sample of
the test classes, and validation a seeded, class-stratified `val_fraction` of the training classes'
samples.

```pycon
>>> targets = np.array([0, 0, 1, 1, 2, 2, 3, 3])
>>> choose_test_classes(targets, share=0.5, seed=0, order="first")
[2, 3]

```
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from lossforge.data.partition import check_fraction, partition_indices

SPLIT_NAMES = ("train", "val", "test")
ORDERS = ("first", "seeded")
"""How the test classes are chosen: the upper half of the sorted class ids, or a seeded random half."""


def choose_test_classes(targets: np.ndarray, *, share: float = 0.5, seed: int, order: str = "first") -> list[int]:
    """The classes that go to test: `floor(K * share)` of the `K` classes present in `targets`.

    `order="first"` keeps the first classes (sorted ids) for training and tests on the last ones, the
    convention of CUB-200-2011 (1–100 / 101–200) and Cars196; `"seeded"` draws the test classes at
    random from the split seed (a different class partition per `dataset.split_seed`).

    Examples:
        >>> choose_test_classes(np.arange(10), share=0.3, seed=0)
        [7, 8, 9]
        >>> len(choose_test_classes(np.arange(10), share=0.5, seed=1, order="seeded"))
        5
    """
    check_fraction("test_class_share", share)
    if order not in ORDERS:
        raise ValueError(f"Expected `order` to be one of {ORDERS} (how test classes are chosen), got {order!r}")
    classes = np.unique(np.asarray(targets)).tolist()
    count = math.floor(len(classes) * share)
    if count < 2 or len(classes) - count < 2:
        raise ValueError(
            f"A class-disjoint split of {len(classes)} classes with test_class_share={share} leaves {count} test and "
            f"{len(classes) - count} training classes; metric learning needs at least 2 of each (pairs of "
            "different classes). Use a dataset with more classes or another share."
        )
    if order == "first":
        return [int(c) for c in classes[len(classes) - count :]]
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(classes), generator=generator)[:count].tolist()
    return sorted(int(classes[index]) for index in chosen)


class TargetedSubset(Dataset):
    """`dataset[indices]` that keeps a `targets` array (samplers read it without loading samples)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], targets: Tensor, *, num_workers: int = 0) -> None:
        self.dataset, self.indices, self.targets = dataset, list(indices), targets
        self.num_workers = num_workers  # DataLoader workers, as the split it came from asked

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]


def _targets_of(split: Any) -> np.ndarray:
    if isinstance(split, Dataset):
        targets = getattr(split, "targets", None)
        if targets is None:
            raise ValueError(
                f"A class-disjoint split needs every split's targets; this {type(split).__name__} has no `targets` "
                "attribute (the dataset contract asks a per-split Dataset for one)."
            )
        return np.asarray(targets.cpu() if isinstance(targets, Tensor) else targets)
    if hasattr(split, "targets"):  # lossforge's Split
        return np.asarray(split.targets.cpu())
    return np.asarray(split[1].cpu() if isinstance(split[1], Tensor) else split[1])


def _is_streamed(split: Any) -> bool:
    """lossforge's `StreamedSplit`: a `dataset` read by DataLoader workers, with all its `targets`."""
    return hasattr(split, "dataset") and hasattr(split, "targets") and hasattr(split, "sample_shape")


def _pool(splits: list[Any]) -> tuple[Any, np.ndarray]:
    """Every split's samples as one pool (arrays concatenated, or a ConcatDataset) and all its targets."""
    targets = np.concatenate([_targets_of(split) for split in splits])
    if all(_is_streamed(split) for split in splits):
        return ConcatDataset([split.dataset for split in splits]), targets
    if any(isinstance(split, Dataset) for split in splits):
        if not all(isinstance(split, Dataset) for split in splits):
            raise ValueError("A dataset must give all splits as arrays or all as Datasets to be re-split by class.")
        return ConcatDataset(splits), targets
    if all(hasattr(split, "features") for split in splits):  # lossforge's Split
        return (torch.cat([s.features for s in splits]), torch.cat([s.targets for s in splits])), targets
    features = [split[0] for split in splits]
    labels = [split[1] for split in splits]
    if isinstance(features[0], Tensor):
        return (torch.cat(features), torch.cat(labels)), targets
    return (np.concatenate(features), np.concatenate(labels)), targets


def _take(pool: Any, indices: np.ndarray, targets: np.ndarray, like: Any) -> Any:
    if _is_streamed(like):  # lossforge's StreamedSplit: still streamed, the same type back
        chosen = torch.from_numpy(targets[indices])
        subset = TargetedSubset(pool, indices.tolist(), chosen, num_workers=like.num_workers)
        return dataclasses.replace(like, dataset=subset, targets=chosen)
    if isinstance(pool, Dataset):
        workers = getattr(like, "num_workers", 0)
        return TargetedSubset(pool, indices.tolist(), torch.from_numpy(targets[indices]), num_workers=workers)
    features, labels = pool
    index = torch.from_numpy(indices) if isinstance(features, Tensor) else indices
    if hasattr(like, "features"):  # lossforge's Split: the same type back
        return dataclasses.replace(like, features=features[index], targets=labels[index])
    return features[index], labels[index]


def class_disjoint_split(
    data: Mapping[str, Any],
    *,
    seed: int,
    test_class_share: float = 0.5,
    val_fraction: float = 0.15,
    order: str = "first",
) -> dict[str, Any]:
    """Re-partition a class-labelled dataset's splits so that test classes are never trained on.

    Args:
        data: a dataset's result: `{"train", "val", "test"}` of `(features, targets)` pairs (numpy or
            torch), `Dataset`\\ s with `targets`, or lossforge `Split`\\ s; other keys are kept.
        seed: the split seed: the validation draw and, with `order="seeded"`, the test classes.
        test_class_share: share of the classes held out for test (0.5: the Reality Check's halves).
        val_fraction: share of the training classes' samples held out for validation (stratified).
        order: `"first"` (test on the last classes by sorted id) or `"seeded"` (a random choice).

    Returns:
        The same mapping with new splits, `classes_disjoint: True` and the test classes recorded as
        `provenance["test_classes"]` (comma-separated class indices).

    Examples:
        >>> images = np.arange(40).reshape(20, 1, 2, 1).astype(np.uint8)
        >>> labels = np.repeat(np.arange(4), 5)
        >>> data = {"train": (images[:12], labels[:12]), "val": (images[12:16], labels[12:16]),
        ...         "test": (images[16:], labels[16:]), "class_names": ("a", "b", "c", "d")}
        >>> split = class_disjoint_split(data, seed=0, val_fraction=0.2)
        >>> sorted(set(split["test"][1].tolist())), sorted(set(split["train"][1].tolist())), len(split["val"][1])
        ([2, 3], [0, 1], 2)
    """
    check_fraction("val_fraction", val_fraction)
    missing = [name for name in SPLIT_NAMES if name not in data]
    if missing:
        raise ValueError(f"A class-disjoint split needs the train, val and test splits; {missing} are missing.")
    splits = [data[name] for name in SPLIT_NAMES]
    pool, targets = _pool(splits)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"A class-disjoint split needs one integer class label per sample, got targets {targets.dtype} of shape "
            f"{targets.shape}; only class-labelled (multiclass) datasets can be split by class."
        )
    held_out = choose_test_classes(targets, share=test_class_share, seed=seed, order=order)
    in_test = np.isin(targets, held_out)
    test_indices = np.flatnonzero(in_test)
    trained = np.flatnonzero(~in_test)
    parts = partition_indices(torch.from_numpy(targets[trained]), {"val": val_fraction}, seed=seed)
    result = dict(data)
    result["train"] = _take(pool, trained[parts["train"].numpy()], targets, splits[0])
    result["val"] = _take(pool, trained[parts["val"].numpy()], targets, splits[1])
    result["test"] = _take(pool, test_indices, targets, splits[2])
    result["classes_disjoint"] = True
    result["provenance"] = {**dict(data.get("provenance") or {}), "test_classes": ",".join(map(str, held_out))}
    return result


def is_class_disjoint(dataset: Any, data: Mapping[str, Any] | None = None) -> bool:
    """Whether a dataset splits test classes from training classes already: the function's
    `class_disjoint` attribute, or a `"classes_disjoint": True` marker in what it returned."""
    return bool(getattr(dataset, "class_disjoint", False) or (data is not None and data.get("classes_disjoint")))


def class_disjoint_data_splits(
    data: Any, *, seed: int, test_class_share: float = 0.5, val_fraction: float = 0.15, order: str = "first"
) -> Any:
    """[class_disjoint_split][lossforge.data.splits.class_disjoint_split] for lossforge's `DataSplits`: the same dataset
    with its three splits re-partitioned by class, marked `class_disjoint` and the test classes added to its
    `provenance` (where this version of `DataSplits` has those fields)."""
    result = class_disjoint_split(
        {**data.splits(), "provenance": dict(getattr(data, "provenance", {}) or {})},
        seed=seed,
        test_class_share=test_class_share,
        val_fraction=val_fraction,
        order=order,
    )
    fields = {field.name for field in dataclasses.fields(data)}
    changes: dict[str, Any] = {name: result[name] for name in SPLIT_NAMES}
    if "class_disjoint" in fields:
        changes["class_disjoint"] = True
    if "provenance" in fields:
        changes["provenance"] = {key: str(value) for key, value in result["provenance"].items()}
    return dataclasses.replace(data, **changes)
