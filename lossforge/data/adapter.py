"""The dataset adapter: whatever a dataset plugin returns, turned into lossforge's validated `DataSplits`.

A dataset (see [lossforge.contract.DatasetPlugin][]) may return

* lossforge's own `DataSplits` — used as it is;
* a mapping `{"train": (features, targets), "val": (...), "test": (...)}` of numpy arrays or tensors of any
  per-sample shape (optionally `"classes_disjoint": True`, and `"provenance": {key: text}`, logged as the
  MLflow tags `data.<key>`);
* per split a `torch.utils.data.Dataset` with a `targets` attribute holding all of that split's targets;
* a `LightningDataModule`: its `train/val/test_dataloader().dataset` are read as above.

**A Dataset per split is streamed:** it becomes a [StreamedSplit][lossforge.data.samples.StreamedSplit], read batch by
batch by lossforge's loaders in `dataset.num_workers` DataLoader worker processes (its `num_workers`
attribute; 0: in the training process), never held in memory; its `targets` serve samplers, class weights
and class-disjoint re-splitting without decoding a sample, and DDP shards it like any split. Its `fingerprint`
attribute, if any, enters `data.test_digest` (a streamed test split is not decoded to hash it). **What a
DataModule gives up:** its datasets are streamed that way, but its own loaders, transforms applied in its
collate function, and its samplers are not used (lossforge's sampler and DDP sharding are).

Conversions, one rule each: float features become float32; `uint8` features with a per-sample shape of
two or more dimensions stay `uint8` (images, normalised on the device with the dataset's `mean`/`std`);
other features become float32. Class targets (multiclass, binary) become int64 — text labels are mapped to
indices in the order of `class_names` or, without them, sorted; multilabel targets float32; regression
targets float32, `(N, 1)` read as `(N,)`.

```pycon
>>> import numpy as np
>>> def toy(*, seed):
...     rng = np.random.default_rng(seed)
...     return {name: (rng.normal(size=(6, 2, 3)), np.array(["b", "a", "c", "a", "b", "c"]))
...             for name in ("train", "val", "test")}
>>> toy.task = "multiclass"
>>> data = to_data_splits(toy(seed=0), name="toy", declared=toy)
>>> data.input_shape, data.num_outputs, data.class_names, data.train.targets.tolist()
((2, 3), 3, ('a', 'b', 'c'), [1, 0, 2, 0, 1, 2])

```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossforge.contract import DATASET_TASKS, Task, did_you_mean
from lossforge.data.base import DataSplits
from lossforge.data.samples import Split, StreamedSplit

SPLITS = ("train", "val", "test")
DESCRIBED_KEYS = ("class_names", "num_classes", "mean", "std")
"""What a dataset may also return in its mapping when it knows it only once it has read its files (an image
folder's class names, its training split's mean/std); a returned value wins over the declared attribute."""


class DatasetContractError(ValueError):
    """A dataset returned something lossforge cannot read; the message names the dataset and the rule."""


def to_data_splits(result: Any, *, name: str, declared: Any = None) -> DataSplits:
    """`result` (what dataset `name` returned) as validated `DataSplits`; `declared` is the dataset
    callable, whose attributes (`task`, `num_classes`, `class_names`, `mean`, `std`,
    `class_disjoint`) describe it."""
    if isinstance(result, DataSplits):
        return result
    if _is_datamodule(result):
        result = _from_datamodule(result, name)
    if not isinstance(result, Mapping):
        raise DatasetContractError(
            f"dataset {name!r} returned {type(result).__name__}; a dataset returns a mapping "
            "{'train': (features, targets), 'val': ..., 'test': ...}, a Dataset per split, a LightningDataModule "
            "or lossforge.data.DataSplits (docs/your-data.md)."
        )
    missing = [split for split in SPLITS if split not in result]
    unknown = [key for key in result if key not in (*SPLITS, "classes_disjoint", "provenance", *DESCRIBED_KEYS)]
    if missing or unknown:
        hint = did_you_mean(str(unknown[0]), SPLITS, n=1) if unknown else ""
        raise DatasetContractError(
            f"dataset {name!r} returned the keys {sorted(map(str, result))}; expected 'train', 'val' and 'test' "
            f"(and optionally 'classes_disjoint', 'provenance', {', '.join(map(repr, DESCRIBED_KEYS))}).{hint}"
        )
    if any(key in result for key in DESCRIBED_KEYS):
        attributes = ("task", "class_disjoint", *DESCRIBED_KEYS)
        known = {key: getattr(declared, key) for key in attributes if getattr(declared, key, None) is not None}
        declared = SimpleNamespace(**{**known, **{key: result[key] for key in DESCRIBED_KEYS if key in result}})
    task = _declared_task(declared, name)
    raw = {split: _read_split(result[split], name, split) for split in SPLITS}
    class_names = tuple(str(label) for label in getattr(declared, "class_names", ()) or ())
    raw, class_names = _encode_text_labels(raw, class_names, task, name)
    splits = {split: _split(features, _targets(targets, task)) for split, (features, targets) in raw.items()}
    num_outputs = _num_outputs(splits, task, declared, class_names)
    if not class_names and task != Task.REGRESSION:  # figures and reports name every class
        class_names = ("0", "1") if task == Task.BINARY else tuple(str(index) for index in range(num_outputs))
    return DataSplits(
        name,
        task,
        splits["train"],
        splits["val"],
        splits["test"],
        num_outputs=num_outputs,
        class_names=class_names,
        mean=tuple(float(v) for v in getattr(declared, "mean", ()) or ()),
        std=tuple(float(v) for v in getattr(declared, "std", ()) or ()),
        class_disjoint=bool(result.get("classes_disjoint", False) or getattr(declared, "class_disjoint", False)),
        provenance={str(key): str(value) for key, value in dict(result.get("provenance") or {}).items()},
    )


def _declared_task(declared: Any, name: str) -> Task:
    task = getattr(declared, "task", None)
    if task is None:
        raise DatasetContractError(
            f"dataset {name!r} declares no task: set it as an attribute holding a plain string, e.g. "
            f"`{name}.task = 'multiclass'` (one of {', '.join(DATASET_TASKS)})."
        )
    if task not in DATASET_TASKS:
        raise DatasetContractError(
            f"dataset {name!r} declares task {task!r}.{did_you_mean(str(task), [str(t) for t in DATASET_TASKS], n=1)} "
            "Expected one "
            f"of {', '.join(DATASET_TASKS)}."
        )
    return Task(task)


def _is_datamodule(result: Any) -> bool:
    return all(hasattr(result, method) for method in ("setup", "train_dataloader", "val_dataloader", "test_dataloader"))


def _from_datamodule(module: Any, name: str) -> dict[str, Any]:
    """The datasets behind a `LightningDataModule`'s three loaders (its loaders themselves are not used)."""
    module.prepare_data()
    module.setup("fit")
    splits = {"train": module.train_dataloader().dataset, "val": module.val_dataloader().dataset}
    module.setup("test")
    splits["test"] = module.test_dataloader().dataset
    return splits


def _read_split(value: Any, name: str, split: str) -> tuple[Any, Any]:
    """`(features, targets)` of one split, features as a tensor; targets as given (text labels kept)."""
    where = f"dataset {name!r}, {split} split"
    if isinstance(value, torch.utils.data.Dataset):
        return _read_torch_dataset(value, where)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise DatasetContractError(
            f"{where}: expected a pair (features, targets) or a torch.utils.data.Dataset with `targets`, got "
            f"{type(value).__name__}"
        )
    features, targets = value
    return _features(features, where), targets


def _split(features: Any, targets: Tensor) -> Split | StreamedSplit:
    if isinstance(features, Tensor):
        return Split(features, targets)
    return StreamedSplit.of(features, targets, num_workers=int(getattr(features, "num_workers", 0) or 0))


def _read_torch_dataset(dataset: Any, where: str) -> tuple[Any, Any]:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise DatasetContractError(
            f"{where}: a torch.utils.data.Dataset needs a `targets` attribute holding all of the split's targets "
            "(samplers, class weights and class-disjoint splits read them without decoding samples)"
        )
    size = len(dataset)
    if len(targets) != size:
        raise DatasetContractError(f"{where}: the Dataset has {size} samples but {len(targets)} targets")
    if size == 0:
        raise DatasetContractError(f"{where}: the split is empty (0 samples); every split needs at least one sample.")
    return dataset, targets  # streamed: never read whole


def _features(values: Any, where: str) -> Tensor:
    try:
        tensor = torch.as_tensor(np.asarray(values) if not isinstance(values, Tensor) else values)
    except (TypeError, ValueError) as error:
        raise DatasetContractError(f"{where}: features must be numeric arrays ({error})") from None
    if tensor.dtype == torch.uint8 and tensor.dim() >= 3:
        return tensor.contiguous()  # images: kept as bytes, normalised on the training device
    return tensor.to(torch.float32).contiguous()


def _encode_text_labels(
    raw: dict[str, tuple[Tensor, Any]], class_names: tuple[str, ...], task: Task, name: str
) -> tuple[dict[str, tuple[Tensor, Any]], tuple[str, ...]]:
    """Text class labels → indices (in `class_names`' order, else sorted); other targets unchanged."""
    arrays = {
        split: np.asarray(targets.numpy() if isinstance(targets, Tensor) else targets)
        for split, (_, targets) in raw.items()
    }
    if not any(array.dtype.kind in "OUS" for array in arrays.values()):
        return raw, class_names
    if task not in (Task.MULTICLASS, Task.BINARY):
        raise DatasetContractError(f"dataset {name!r}: text targets need a class task, but it declares {task}")
    labels = [str(label) for array in arrays.values() for label in array.ravel()]
    order = class_names or tuple(sorted(set(labels)))
    index = {label: position for position, label in enumerate(order)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DatasetContractError(
            f"dataset {name!r}: labels {unknown[:5]} are not among its class_names {list(order)}"
        )
    encoded = {
        split: (raw[split][0], np.array([index[str(label)] for label in array.ravel()], dtype=np.int64))
        for split, array in arrays.items()
    }
    return encoded, order


def _targets(values: Any, task: Task) -> Tensor:
    tensor = torch.as_tensor(np.asarray(values) if not isinstance(values, Tensor) else values)
    if task in (Task.MULTICLASS, Task.BINARY):
        if tensor.dim() == 2 and tensor.shape[1] == 1:
            tensor = tensor[:, 0]
        if tensor.is_floating_point():
            if not bool((tensor == tensor.round()).all()):
                return tensor  # not class indices: validation says so, naming the split
            tensor = tensor.round()
        return tensor.to(torch.int64).contiguous()
    tensor = tensor.to(torch.float32)
    if task == Task.REGRESSION and tensor.dim() == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    return tensor.contiguous()


def _num_outputs(
    splits: dict[str, Split | StreamedSplit], task: Task, declared: Any, class_names: tuple[str, ...]
) -> int:
    targets = splits["train"].targets
    if task == Task.BINARY:
        return 1
    if task == Task.MULTICLASS:
        declared_count = getattr(declared, "num_classes", None)
        if declared_count:
            return int(declared_count)
        if class_names:
            return len(class_names)
        return int(max(int(split.targets.max()) for split in splits.values())) + 1
    if task == Task.MULTILABEL:
        return int(targets.shape[1]) if targets.dim() == 2 else 1
    return int(targets.shape[1]) if targets.dim() == 2 else 1
