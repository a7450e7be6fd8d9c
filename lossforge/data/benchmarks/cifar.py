"""CIFAR-10 and CIFAR-100 from their official python version, unpickled by an unpickler that builds arrays only.

The python version's batches (`cifar-10-batches-py/data_batch_1` … `_5`, `test_batch`,
`batches.meta`; `cifar-100-python/train`, `test`, `meta`) are pickles: dicts of lists, byte strings
and one `uint8` array `data` $(N, 3072)$ — 1,024 red, then green, then blue values per image,
row by row. Unpickling runs whatever a pickle names, so
[ArraysOnlyUnpickler][lossforge.data.benchmarks.cifar.ArraysOnlyUnpickler] refuses every global except numpy's array
reconstruction (`_reconstruct`, `ndarray`, `dtype`: all a batch needs) — in the spirit of
`torch.load(weights_only=True)`. A pickle that names `os.system` or any other callable is refused before anything runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from lossforge.data.benchmarks.common import carve_validation, find_folder, not_found_error
from lossforge.data.benchmarks.downloads import Archive, download_and_extract

CIFAR10_ARCHIVE = Archive(
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    filename="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
"""The official archives (python version) and their published MD5 sums."""
CIFAR100_ARCHIVE = Archive(
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    filename="cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
)
ARCHIVES: dict[str, Archive] = {"cifar10": CIFAR10_ARCHIVE, "cifar100": CIFAR100_ARCHIVE}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The globals a pickled numpy array names: the module of `_reconstruct` moved from numpy.core (numpy 1,
# the name in the official files) to numpy._core (numpy 2); both resolve to this numpy's own objects.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and numpy arrays, and refuses every other global.

    Examples:
        >>> import os
        >>> class Payload:
        ...     def __reduce__(self):
        ...         return (os.system, ("echo owned",))
        >>> ArraysOnlyUnpickler(io.BytesIO(pickle.dumps(Payload()))).load()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: Refusing to unpickle global 'posix.system': ...
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(
            f"Refusing to unpickle global '{module}.{name}': a CIFAR batch holds only dicts, lists, bytes and "
            "numpy arrays, so this file is not an official batch (it may try to run code). Download it again."
        )


def read_batch(path: Path) -> dict[str, Any]:
    """One CIFAR python batch (or meta file) as a dict with `str` keys, unpickled arrays-only.

    The files were pickled by Python 2; `latin1` turns their byte strings into `str` the way numpy
    expects when it rebuilds the arrays.
    """
    if not path.is_file():
        raise ValueError(f"CIFAR batch '{path}' does not exist.")
    try:
        content = ArraysOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except pickle.UnpicklingError:
        raise
    except Exception as error:
        raise ValueError(f"CIFAR batch '{path}' cannot be unpickled ({error}); extract the archive again.") from error
    if not isinstance(content, dict):
        raise ValueError(f"CIFAR batch '{path}' holds a {type(content).__name__}, expected a dict.")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _images_and_labels(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """`uint8` $(N, 3, 32, 32)$ images and `int64` $(N,)$ labels of one batch, checked."""
    batch = read_batch(path)
    if "data" not in batch or label_key not in batch:
        raise ValueError(f"CIFAR batch '{path}' has keys {sorted(batch)}; expected 'data' and {label_key!r}.")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"CIFAR batch '{path}': expected uint8 data of shape (N, 3072), got {data.dtype} {data.shape}."
        )
    if labels.shape != (len(data),) or (len(labels) and not 0 <= labels.min() <= labels.max() < num_classes):
        raise ValueError(f"CIFAR batch '{path}': expected {len(data)} labels in [0, {num_classes}).")
    return data.reshape(-1, 3, 32, 32), labels  # (N, 3, 32, 32): the stored order is channel, row, column


def _names(meta: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(name.decode() if isinstance(name, bytes) else name) for name in meta.get(key, ()))


def _result(
    train_images: np.ndarray, train_labels: np.ndarray, test: tuple[np.ndarray, np.ndarray], **extra: Any
) -> dict[str, Any]:
    seed, val_fraction = extra.pop("seed"), extra.pop("val_fraction")
    train, val = carve_validation(train_images, train_labels, val_fraction=val_fraction, seed=seed)
    return {"train": train, "val": val, "test": test, **extra}


def cifar10(
    *, seed: int, root: str = "data/cifar10", download: bool = False, val_fraction: float = 0.1
) -> dict[str, Any]:
    """CIFAR-10: 50,000 training images (a stratified `val_fraction` of them for validation) and the
    official 10,000 test images, `uint8` $(N, 3, 32, 32)$, 10 classes.

    Args:
        seed: the split seed: which training images are held out for validation.
        root: `cifar-10-batches-py/` or the folder that holds it.
        download: fetch and extract the official archive (163 MB) into `root` when it is missing.
        val_fraction: share of the 50,000 training images used for validation.
    """
    folder = find_folder(root, "cifar-10-batches-py", "data_batch_1")
    if folder is None and download:
        download_and_extract([ARCHIVES["cifar10"]], root)
        folder = find_folder(root, "cifar-10-batches-py", "data_batch_1")
    if folder is None:
        raise not_found_error("CIFAR-10", root, "cifar-10-batches-py/ with data_batch_1 … data_batch_5 and test_batch")
    parts = [_images_and_labels(folder / f"data_batch_{index}", "labels", 10) for index in range(1, 6)]
    names = _names(read_batch(folder / "batches.meta"), "label_names") if (folder / "batches.meta").is_file() else ()
    return _result(
        np.concatenate([images for images, _ in parts]),
        np.concatenate([labels for _, labels in parts]),
        _images_and_labels(folder / "test_batch", "labels", 10),
        seed=seed,
        val_fraction=val_fraction,
        class_names=names or CIFAR10_CLASSES,
        mean=cifar10.mean,  # type: ignore[attr-defined]
        std=cifar10.std,  # type: ignore[attr-defined]
        provenance={"dataset": "cifar10", "archive_md5": CIFAR10_ARCHIVE.md5},
    )


def cifar100(
    *,
    seed: int,
    root: str = "data/cifar100",
    download: bool = False,
    val_fraction: float = 0.1,
    labels: str = "fine",
) -> dict[str, Any]:
    """CIFAR-100: 50,000 training images (a stratified `val_fraction` for validation) and the official
    10,000 test images, `uint8` $(N, 3, 32, 32)$; 100 fine classes or 20 coarse super-classes.

    Args:
        seed: the split seed: which training images are held out for validation.
        root: `cifar-100-python/` or the folder that holds it.
        download: fetch and extract the official archive (161 MB) into `root` when it is missing.
        val_fraction: share of the 50,000 training images used for validation.
        labels: `"fine"` (100 classes) or `"coarse"` (20 super-classes).
    """
    if labels not in ("fine", "coarse"):
        raise ValueError(f"Expected `labels` to be 'fine' (100 classes) or 'coarse' (20 super-classes), got {labels!r}")
    folder = find_folder(root, "cifar-100-python", "train")
    if folder is None and download:
        download_and_extract([ARCHIVES["cifar100"]], root)
        folder = find_folder(root, "cifar-100-python", "train")
    if folder is None:
        raise not_found_error("CIFAR-100", root, "cifar-100-python/ with train, test and meta")
    num_classes = 100 if labels == "fine" else 20
    key = f"{labels}_labels"
    names = _names(read_batch(folder / "meta"), f"{labels}_label_names") if (folder / "meta").is_file() else ()
    train_images, train_labels = _images_and_labels(folder / "train", key, num_classes)
    return _result(
        train_images,
        train_labels,
        _images_and_labels(folder / "test", key, num_classes),
        seed=seed,
        val_fraction=val_fraction,
        class_names=names or tuple(str(index) for index in range(num_classes)),
        num_classes=num_classes,
        mean=cifar100.mean,  # type: ignore[attr-defined]
        std=cifar100.std,  # type: ignore[attr-defined]
        provenance={"dataset": "cifar100", "archive_md5": CIFAR100_ARCHIVE.md5},
    )


# What lossforge reads from the dataset functions (the dataset contract): the task and, for images, the
# per-channel mean/std on the [0, 1] scale (the training set's, as commonly published).
cifar10.task = "multiclass"  # type: ignore[attr-defined]
cifar10.num_classes = 10  # type: ignore[attr-defined]
cifar10.class_names = CIFAR10_CLASSES  # type: ignore[attr-defined]
cifar10.mean = (0.4914, 0.4822, 0.4465)  # type: ignore[attr-defined]
cifar10.std = (0.2470, 0.2435, 0.2616)  # type: ignore[attr-defined]
cifar100.task = "multiclass"  # type: ignore[attr-defined]
cifar100.mean = (0.5071, 0.4865, 0.4409)  # type: ignore[attr-defined]
cifar100.std = (0.2673, 0.2564, 0.2762)  # type: ignore[attr-defined]
