"""Decoded images as a dataset's splits: in memory when they fit a byte budget, otherwise `ImageFiles`
streamed from disk by DataLoader workers; a file list's fingerprint and the per-channel statistics that
normalise them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lossforge.data.image_decoding import (
    _failure,
    check_channels,
    check_readable,
    decode_image,
    decode_images,
    default_num_workers,
    image_bytes,
    image_size_pair,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's per-channel mean and std on the [0, 1] scale: what pretrained trunks expect."""
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFiles(Dataset):
    """A split streamed from disk: `__getitem__` decodes one file; `targets` holds every target.

    Samplers, class weights and class-disjoint re-splitting read `targets` without decoding a single
    image. `num_workers` is how many DataLoader worker processes should decode in parallel.

    Args:
        paths: one image file per sample.
        targets: $(N,)$ int64 class index per sample.
        channels: 1 (grey) or 3 (RGB).
        image_size: `(height, width)` or a square side.
        num_workers: DataLoader workers that should read this split.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     Image.new("L", (4, 4), 7).save(f"{folder}/a.png")
        ...     split = ImageFiles([Path(folder) / "a.png"], torch.tensor([2]), channels=1, image_size=4)
        ...     image, target = split[0]
        >>> tuple(image.shape), image.dtype, int(target), split.targets.tolist()
        ((1, 4, 4), torch.uint8, 2, [2])
    """

    def __init__(
        self,
        paths: Sequence[Path],
        targets: Tensor,
        *,
        channels: int,
        image_size: int | Sequence[int],
        num_workers: int = 0,
    ) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"expected one target per image file, got {len(targets)} targets for {len(paths)} files")
        self.paths = [Path(path) for path in paths]
        self.targets = torch.as_tensor(targets, dtype=torch.int64)  # (N,)
        self.channels, self.image_size = check_channels(channels), image_size_pair(image_size)
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of what this split decodes to, without decoding it: the decoding settings and, in sample
        order, each file's path (relative to the files' common folder) and size — what lossforge hashes
        into `data.test_digest` for a streamed split."""
        digest = hashlib.sha256(f"{self.channels};{self.image_size};".encode())
        base = Path(os.path.commonpath(self.paths)) if self.paths else Path()
        for path in self.paths:
            relative = path.relative_to(base).as_posix() if path != base else path.name
            digest.update(f"{relative}\t{path.stat().st_size}\n".encode())
        return digest.hexdigest()

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        path = self.paths[index]
        try:
            image = decode_image(path, channels=self.channels, image_size=self.image_size)
        except Exception as error:
            raise ValueError(f"Cannot read image file {_failure(path, error)}") from error
        return torch.from_numpy(image), self.targets[index]  # (C, H, W) uint8, () int64


def file_list_sha256(root: str | os.PathLike[str], paths: Sequence[Path]) -> str:
    """SHA-256 of the sorted `relative path + size` lines of `paths`: a cheap fingerprint of an image
    collection (renaming, adding, removing or resizing a file changes it; reading no pixel).

    ```pycon
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (Path(folder) / "a.png").write_bytes(b"12")
    ...     first = file_list_sha256(folder, [Path(folder) / "a.png"])
    ...     _ = (Path(folder) / "a.png").write_bytes(b"123")
    ...     first == file_list_sha256(folder, [Path(folder) / "a.png"])
    False

    ```
    """
    base = Path(root)
    lines = sorted(f"{Path(path).relative_to(base).as_posix()}\t{Path(path).stat().st_size}\n" for path in paths)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def channel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of `uint8` $(N, C, H, W)$ images, on the [0, 1] scale.

    ```pycon
    >>> channel_statistics(np.array([[[[0, 255]]]], dtype=np.uint8))
    ((0.5,), (0.5,))

    ```
    """
    scaled = images.astype(np.float64) / 255.0
    mean = scaled.mean(axis=(0, 2, 3))
    std = scaled.std(axis=(0, 2, 3))
    return tuple(round(float(m), 4) for m in mean), tuple(round(max(float(s), 1e-3), 4) for s in std)


def load_splits(
    files: dict[str, tuple[list[Path], np.ndarray]],
    *,
    channels: int,
    image_size: int | Sequence[int],
    memory_budget_mb: float,
    num_workers: int | None,
) -> dict[str, Any]:
    """Split name → `(paths, targets)` into the contract's splits: decoded arrays when all of them fit in
    `memory_budget_mb`, otherwise [ImageFiles][lossforge.data.image_splits.ImageFiles] streamed by `num_workers`
    DataLoader workers.

    Returns the three splits: all `(images, targets)` arrays, or all
    [ImageFiles][lossforge.data.image_splits.ImageFiles].
    """
    if isinstance(memory_budget_mb, bool) or not isinstance(memory_budget_mb, int | float) or memory_budget_mb < 0:
        raise ValueError(
            f"Expected `memory_budget_mb` >= 0 (MiB of decoded images held in memory), got {memory_budget_mb!r}"
        )
    workers = default_num_workers() if num_workers is None else num_workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"Expected `num_workers` >= 0 (DataLoader worker processes) or null, got {num_workers!r}")
    check_channels(channels)
    total = sum(len(paths) for paths, _ in files.values())
    needed = image_bytes(total, channels=channels, image_size=image_size)
    streamed = needed > memory_budget_mb * 2**20
    result: dict[str, Any] = {}
    if streamed:
        check_readable([path for paths, _ in files.values() for path in paths], num_workers=max(1, workers))
        for name, (paths, targets) in files.items():
            result[name] = ImageFiles(
                paths, torch.from_numpy(targets), channels=channels, image_size=image_size, num_workers=workers
            )
    else:
        every = [path for paths, _ in files.values() for path in paths]
        decoded = decode_images(every, channels=channels, image_size=image_size, num_workers=max(1, workers))
        start = 0
        for name, (paths, targets) in files.items():
            result[name] = (decoded[start : start + len(paths)], targets)
            start += len(paths)
    return result


def training_statistics(
    train: Any, *, channels: int, sample: int = 512, seed: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of the training split: all of it in memory, or a seeded sample of `sample`
    images when it streams (decoding every file once more only to normalise would double the start-up)."""
    if isinstance(train, ImageFiles):
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(train), generator=generator)[:sample].tolist()
        images = np.stack([train[index][0].numpy() for index in chosen])
    else:
        images = train[0]
    if len(images) == 0:
        return (0.5,) * channels, (0.25,) * channels
    return channel_statistics(images)
