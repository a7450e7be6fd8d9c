"""What the benchmark readers share: finding the dataset's folder under `root`, carving a validation
split out of an official training set, the metric-learning class split, and the result mapping."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossforge.data.image_splits import IMAGENET_MEAN, IMAGENET_STD, file_list_sha256, load_splits
from lossforge.data.partition import check_fraction, partition_indices


def find_folder(root: str | os.PathLike[str], folder_name: str, marker: str) -> Path | None:
    """The dataset's folder: `root` itself when it holds `marker`, else `root/folder_name` when that
    does (users point `dataset.root` at either), else `None`."""
    base = Path(root).expanduser()
    for candidate in (base, base / folder_name):
        if (candidate / marker).exists():
            return candidate
    return None


def not_found_error(dataset: str, root: str | os.PathLike[str], expected: str) -> ValueError:
    """The error for a benchmark whose files are not under `root`: what was expected and how to get it."""
    return ValueError(
        f"{dataset} not found under '{Path(root).expanduser().resolve()}': expected {expected}. Point "
        "dataset.root at the folder that holds it (or at its parent), or pass dataset.download=true to fetch "
        "the official archive into dataset.root."
    )


def carve_validation(
    images: np.ndarray, targets: np.ndarray, *, val_fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """`(train, val)` from an official training set: a seeded, class-stratified `val_fraction` is val."""
    check_fraction("val_fraction", val_fraction)
    parts = partition_indices(torch.from_numpy(targets), {"val": val_fraction}, seed=seed)
    train, val = parts["train"].numpy(), parts["val"].numpy()
    return (images[train], targets[train]), (images[val], targets[val])


def class_halves(targets: np.ndarray, num_classes: int) -> np.ndarray:
    """Whether each sample's class is in the first half of the classes (`< num_classes // 2`): the
    metric-learning convention of CUB-200-2011 (100 / 100) and Cars196 (98 / 98) — train and validate on
    the first half, test on the second, classes the embedding never saw."""
    return targets < num_classes // 2


def image_benchmark(
    name: str,
    folder: Path,
    files: dict[str, tuple[list[Path], np.ndarray]],
    *,
    class_names: Sequence[str],
    seed: int,
    val_fraction: float,
    image_size: int | Sequence[int],
    channels: int,
    memory_budget_mb: float,
    num_workers: int | None,
) -> dict[str, Any]:
    """A class-disjoint image benchmark from `{"trainval": files, "test": files}`: val is a seeded,
    class-stratified `val_fraction` of the training classes' images; decoded or streamed by
    [load_splits][lossforge.data.image_splits.load_splits]; ImageNet's mean/std (what pretrained trunks expect)."""
    check_fraction("val_fraction", val_fraction)
    paths, targets = files["trainval"]
    parts = partition_indices(torch.from_numpy(targets), {"val": val_fraction}, seed=seed)
    split_files = {
        split: ([paths[i] for i in parts[split].tolist()], targets[parts[split].numpy()]) for split in ("train", "val")
    }
    split_files["test"] = files["test"]
    data = load_splits(
        split_files,
        channels=channels,
        image_size=image_size,
        memory_budget_mb=memory_budget_mb,
        num_workers=num_workers,
    )
    every = [path for split_paths, _ in files.values() for path in split_paths]
    data.update(
        class_names=tuple(class_names),
        num_classes=len(class_names),
        mean=IMAGENET_MEAN if channels == 3 else (0.449,),
        std=IMAGENET_STD if channels == 3 else (0.226,),
        classes_disjoint=True,
        provenance={
            "dataset": name,
            "root": str(folder.resolve()),
            "file_list_sha256": file_list_sha256(folder, every),
            "num_files": len(every),
        },
    )
    return data


def missing_files(paths: Sequence[Path], dataset: str, folder: Path) -> None:
    """Raise one error naming the listed image files that do not exist (up to 20), if any."""
    missing = [path for path in paths if not path.is_file()]
    if missing:
        named = "\n  ".join(str(path.relative_to(folder)) for path in missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise ValueError(
            f"{dataset}: {len(missing)} of {len(paths)} image files listed in its annotation files are missing "
            f"under '{folder}':\n  {named}{more}\nExtract the archive again (or fetch it: dataset.download=true)."
        )
