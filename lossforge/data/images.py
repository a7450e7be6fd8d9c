"""Image data: decode files with Pillow into `uint8` `(N, C, H, W)`, in memory or streamed from disk.

Every image dataset of lossforge (`image_folder` and the standard benchmarks in
[lossforge.data.benchmarks][]) follows the dataset contract: a function of keyword-only parameters and
the split seed `seed` that returns `{"train": ..., "val": ..., "test": ...}`. Each split is either a
pair of numpy arrays `(images, targets)` — images `uint8` $(N, C, H, W)$, targets `int64`
$(N,)$ — or, when the decoded images would exceed `memory_budget_mb`, an [ImageFiles][lossforge.data.images.ImageFiles]
dataset that decodes one file per `__getitem__` in DataLoader workers and holds all its targets in
`targets`. Images stay `uint8` (a float32 copy of CUB-200-2011 at 224 px would be about 7 GB);
`mean` / `std` per channel, on the `[0, 1]` scale (`uint8 / 255`), tell lossforge how to normalise
them on the training device.

Besides the splits, the returned mapping carries `class_names`, `mean`, `std` (what the folder
holds, so not known before it is read) and `provenance` — `{"file_list_sha256": ...}`, the SHA-256 of
the sorted relative paths and sizes of every file read ([file_list_sha256][lossforge.data.images.file_list_sha256]),
cheap to compute and to log to MLflow in place of the decoded tensors. A streamed split carries its DataLoader worker
count as `ImageFiles.num_workers`.

```pycon
>>> image_bytes(1000, channels=3, image_size=(32, 32))
3072000

```
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lossforge.data.partition import check_fraction, partition_indices

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
"""File suffixes read as images (case-insensitive); other files in a class folder are ignored."""
MAX_NAMED_FAILURES = 20
"""How many unreadable files one error names before it says "and N more"."""
SPLIT_FOLDERS = ("train", "val", "test")
"""The names of the sub-trees of a folder that is split already."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's per-channel mean and std on the [0, 1] scale: what pretrained trunks expect."""
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    """`image_size` as `(height, width)`: an int is a square side.

    ```pycon
    >>> image_size_pair(32), image_size_pair([24, 32])
    ((32, 32), (24, 32))
    >>> image_size_pair(0)
    Traceback (most recent call last):
    ...
    ValueError: Expected `image_size` to be a positive int or [height, width], got 0

    ```
    """
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        sides = [image_size, image_size]
    elif isinstance(image_size, Sequence) and not isinstance(image_size, str) and len(image_size) == 2:
        sides = list(image_size)
    else:
        sides = []
    if len(sides) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sides):
        raise ValueError(f"Expected `image_size` to be a positive int or [height, width], got {image_size!r}")
    return sides[0], sides[1]


def check_channels(channels: int) -> int:
    """`channels` if it is 1 (grey, Pillow's `L`) or 3 (`RGB`); a `ValueError` otherwise."""
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"Expected `channels` to be 1 (greyscale) or 3 (RGB), got {channels!r}")
    return channels


def image_bytes(count: int, *, channels: int, image_size: int | Sequence[int]) -> int:
    """Bytes that `count` decoded `uint8` images take in memory: $N \\cdot C \\cdot H \\cdot W$."""
    height, width = image_size_pair(image_size)
    return count * channels * height * width


def default_num_workers() -> int:
    """DataLoader workers by default: the cores this process may run on (`os.sched_getaffinity`), which
    the parallel launcher narrows per job — never more cores than the job was given."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def decode_image(path: str | os.PathLike[str], *, channels: int, image_size: int | Sequence[int]) -> np.ndarray:
    """One image file → `uint8` $(C, H, W)$: converted to RGB (3) or grey (1), resized bilinearly.

    Shape:
        - output: $(C, H, W)$, `C = channels`, `(H, W) = image_size`.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     Image.new("RGB", (20, 10), (255, 0, 0)).save(f"{folder}/red.png")
        ...     decode_image(f"{folder}/red.png", channels=3, image_size=8)[:, 0, 0].tolist()
        [255, 0, 0]
    """
    from PIL import Image  # deferred: importing lossforge.data stays cheap

    height, width = image_size_pair(image_size)
    with Image.open(path) as image:
        converted = image.convert("RGB" if check_channels(channels) == 3 else "L")
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(converted, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1).copy()  # (C, H, W)


def _failure(path: Path, error: BaseException) -> str:
    reason = str(error).replace(f" '{path}'", "")  # Pillow repeats the path in its message
    return f"{path}: {type(error).__name__}: {reason}"


def unreadable_files_error(failures: Sequence[str], total: int) -> ValueError:
    """One error naming every unreadable file (up to [MAX_NAMED_FAILURES][lossforge.data.images.MAX_NAMED_FAILURES]), so
    a user fixes them all at once instead of one per run."""
    named = "\n  ".join(failures[:MAX_NAMED_FAILURES])
    more = f"\n  ... and {len(failures) - MAX_NAMED_FAILURES} more" if len(failures) > MAX_NAMED_FAILURES else ""
    return ValueError(
        f"{len(failures)} of {total} image files cannot be read:\n  {named}{more}\n"
        "Delete or replace them (e.g. copy them again: a truncated download), or move them out of the folder."
    )


def decode_images(
    paths: Sequence[Path], *, channels: int, image_size: int | Sequence[int], num_workers: int = 1
) -> np.ndarray:
    """Decode every file in `paths` into one `uint8` $(N, C, H, W)$ array.

    Pillow releases the GIL while it decodes, so `num_workers` threads decode in parallel. Files that
    cannot be decoded are all collected and named in one `ValueError`.
    """
    height, width = image_size_pair(image_size)
    images = np.empty((len(paths), channels, height, width), dtype=np.uint8)  # (N, C, H, W)
    failures: list[str] = []

    def decode_into(index: int) -> None:
        try:
            images[index] = decode_image(paths[index], channels=channels, image_size=(height, width))
        except Exception as error:  # every decoding problem is reported, by file
            failures.append(_failure(paths[index], error))

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        list(pool.map(decode_into, range(len(paths))))
    if failures:
        raise unreadable_files_error(sorted(failures), len(paths))
    return images


def check_readable(paths: Sequence[Path], *, num_workers: int = 1) -> None:
    """Open every file's header (no decoding) and name all that Pillow cannot identify, in one error.

    The cheap check before streaming: a file that is not an image at all fails here, before training
    starts, rather than in a DataLoader worker an hour into the run.
    """
    from PIL import Image

    failures: list[str] = []

    def open_header(path: Path) -> None:
        try:
            with Image.open(path):
                pass
        except Exception as error:  # every problem is reported, by file
            failures.append(_failure(path, error))

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        list(pool.map(open_header, paths))
    if failures:
        raise unreadable_files_error(sorted(failures), len(paths))


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
    `memory_budget_mb`, otherwise [ImageFiles][lossforge.data.images.ImageFiles] streamed by `num_workers` DataLoader
    workers.

    Returns the three splits: all `(images, targets)` arrays, or all [ImageFiles][lossforge.data.images.ImageFiles].
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
    [ImageFiles][lossforge.data.images.ImageFiles] streamed by `num_workers` DataLoader workers (default: the cores this
    job may use). Every file that cannot be read is named in one error.

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
