"""Image data: decode files with Pillow into `uint8` `(N, C, H, W)`, in memory or streamed from disk.

Every image dataset of lossforge (`image_folder` and the standard benchmarks in [lossforge.data.benchmarks][])
follows the dataset contract: a function of keyword-only parameters and the split seed `seed` that returns
`{"train": ..., "val": ..., "test": ...}`. Each split is either a pair of numpy arrays `(images, targets)` —
images `uint8` $(N, C, H, W)$, targets `int64` $(N,)$ — or, when the decoded images would exceed
`memory_budget_mb`, an [ImageFiles][lossforge.data.image_splits.ImageFiles] dataset that decodes one file per
`__getitem__` in DataLoader workers and holds all its targets in `targets`. Images stay `uint8` (a float32
copy of CUB-200-2011 at 224 px would be about 7 GB); `mean` / `std` per channel, on the `[0, 1]` scale
(`uint8 / 255`), tell lossforge how to normalise them on the training device.

Besides the splits, the returned mapping carries `class_names`, `mean`, `std` (what the folder holds, so not
known before it is read) and `provenance` — `{"file_list_sha256": ...}`, the SHA-256 of the sorted relative
paths and sizes of every file read ([file_list_sha256][lossforge.data.image_splits.file_list_sha256]), cheap
to compute and to log to MLflow in place of the decoded tensors. A streamed split carries its DataLoader
worker count as `ImageFiles.num_workers`.

`image_folder` is here; the decoding is in [image_decoding][lossforge.data.image_decoding] and the splits in
memory or streamed in [image_splits][lossforge.data.image_splits]. Their public names are importable from here.

```pycon
>>> image_bytes(1000, channels=3, image_size=(32, 32))
3072000

```
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossforge.data.image_decoding import (
    check_channels,
    check_readable,
    decode_image,
    decode_images,
    default_num_workers,
    image_bytes,
    image_size_pair,
)
from lossforge.data.image_splits import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFiles,
    channel_statistics,
    file_list_sha256,
    load_splits,
    training_statistics,
)
from lossforge.data.partition import check_fraction, partition_indices

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
"""File suffixes read as images (case-insensitive); other files in a class folder are ignored."""
SPLIT_FOLDERS = ("train", "val", "test")
"""The names of the sub-trees of a folder that is split already."""


# -- image_folder ----------------------------------------------------------------------------------------
def _images_under(folder: Path) -> list[Path]:
    """Every image file below `folder` (recursively), hidden files and folders skipped, sorted."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def scan_class_folders(folder: Path, classes: Sequence[str]) -> tuple[list[Path], np.ndarray]:
    """Files and class indices of `folder/<class>/**` for each class name (index = position in
    `classes`); a class absent from `folder` simply contributes no files."""
    paths: list[Path] = []
    targets: list[int] = []
    for index, name in enumerate(classes):
        if (folder / name).is_dir():
            found = _images_under(folder / name)
            paths += found
            targets += [index] * len(found)
    return paths, np.asarray(targets, dtype=np.int64)


def _missing_root_error(root: Path) -> ValueError:
    return ValueError(
        f"Image folder '{root}' does not exist. Point dataset.root at a folder with one sub-folder per class "
        "(root/<class>/<image>.png), or with train/, val/ and test/ sub-trees of class folders."
    )


def image_folder(
    *,
    seed: int,
    root: str = "data/images",
    image_size: int | list[int] = 32,
    channels: int = 3,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    memory_budget_mb: float = 2048,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Images from `root/<class>/…` — or `root/train|val|test/<class>/…` — as a multiclass dataset.

    Class names are the sorted names of the class folders (over all three sub-trees when the folder is
    split already), so a class absent from one split still counts. Files are found recursively below each
    class folder by suffix ([IMAGE_SUFFIXES][lossforge.data.images.IMAGE_SUFFIXES]); hidden files are skipped.

    Splits: with `train/` (and optionally `val/` and `test/`) sub-trees they are used as given; a
    missing `val/` or `test/` is carved out of `train/` by a seeded, stratified `val_fraction` /
    `test_fraction` (of all images). Without them, the images are split the same way from the class folders.

    Decoding: Pillow, converted to RGB (`channels=3`) or grey (`channels=1`), resized to `image_size`,
    kept `uint8` $(N, C, H, W)$. When all images fit in `memory_budget_mb` MiB they are decoded
    once (threads, `num_workers`) and held in memory; above it every split is an
    [ImageFiles][lossforge.data.image_splits.ImageFiles] streamed by `num_workers` DataLoader workers (default: the
    cores this job may use). Every file that cannot be read is named in one error.

    Args:
        seed: the split seed (`dataset.split_seed`): which images are train, validation and test.
        root: the folder (`~` is expanded; relative paths are relative to the working directory).
        image_size: side of the square every image is resized to, or `[height, width]`.
        channels: 3 (RGB) or 1 (greyscale).
        val_fraction: share of the images for validation when there is no `val/` sub-tree.
        test_fraction: share of the images for testing when there is no `test/` sub-tree.
        memory_budget_mb: MiB of decoded images held in memory; above it the images stream from disk.
        num_workers: decoding threads / DataLoader workers; `None`: `len(os.sched_getaffinity(0))`.

    Returns:
        `{"train", "val", "test"}` splits, `class_names`, `mean` / `std` (per channel of the
        training split, [0, 1] scale) and `provenance`
        (`file_list_sha256`, `root`, `num_files`).
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise _missing_root_error(folder)
    check_channels(channels)
    image_size_pair(image_size)
    subtrees = [name for name in SPLIT_FOLDERS if (folder / name).is_dir()]
    if subtrees and "train" not in subtrees:
        raise ValueError(
            f"Image folder '{folder}' has {'/, '.join(subtrees)}/ but no train/ sub-tree; a split folder needs "
            "train/ (val/ and test/ are optional and carved out of train/ when absent)."
        )
    if subtrees:
        classes = sorted({name for sub in subtrees for name in _class_folders(folder / sub)})
        given = {name: scan_class_folders(folder / name, classes) for name in subtrees}
    else:
        classes = _class_folders(folder)
        given = {"train": scan_class_folders(folder, classes)}
    if not classes:
        raise ValueError(
            f"Image folder '{folder}' has no class sub-folders. Expected root/<class>/<image> (e.g. "
            "root/cat/001.png, root/dog/002.png), or train/, val/ and test/ sub-trees of class folders."
        )
    counts = np.zeros(len(classes), dtype=np.int64)
    for _, targets in given.values():
        counts += np.bincount(targets, minlength=len(classes))
    empty = [name for name, count in zip(classes, counts, strict=True) if count == 0]
    if empty:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(
            f"Image folder '{folder}': class folder(s) {empty} hold no image files (suffixes {suffixes}); "
            "remove them or add images."
        )
    missing = [name for name in ("val", "test") if name not in given]
    if missing:
        fractions = {"val": val_fraction, "test": test_fraction}
        for name in missing:
            check_fraction(f"{name}_fraction", fractions[name])
        train_paths, train_targets = given["train"]
        parts = partition_indices(
            torch.from_numpy(train_targets), {name: fractions[name] for name in missing}, seed=seed
        )
        for name, indices in parts.items():
            chosen = indices.numpy()
            given[name] = ([train_paths[i] for i in chosen], train_targets[chosen])
    files = {name: given[name] for name in SPLIT_FOLDERS}
    data = load_splits(
        files, channels=channels, image_size=image_size, memory_budget_mb=memory_budget_mb, num_workers=num_workers
    )
    mean, std = training_statistics(data["train"], channels=channels, seed=seed)
    every = [path for paths, _ in files.values() for path in paths]
    data.update(
        class_names=tuple(classes),
        mean=mean,
        std=std,
        provenance={
            "dataset": "image_folder",
            "root": str(folder.resolve()),
            "file_list_sha256": file_list_sha256(folder, every),
            "num_files": len(every),
        },
    )
    return data


image_folder.task = "multiclass"  # type: ignore[attr-defined]


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "ImageFiles",
    "channel_statistics",
    "check_readable",
    "decode_image",
    "decode_images",
    "default_num_workers",
    "file_list_sha256",
    "image_bytes",
    "image_folder",
    "image_size_pair",
    "load_splits",
]
