"""MNIST from its four IDX files, read by a strict IDX reader; downloaded only when asked.

Put `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
`t10k-labels-idx1-ubyte` (each optionally gzipped, `.gz`) in one folder and pass it as `root`, or
pass `download=True` to fetch them (about 11 MB) from a public mirror, checked against their published
MD5 sums. Nothing is downloaded by default. Other datasets in the same format (Fashion-MNIST, KMNIST) load
the same way; only `class_names` would be wrong.

The IDX format: 2 zero bytes, a dtype code, the number of dimensions `d`, then `d` big-endian uint32
sizes, then the values, big-endian, in C order. [read_idx][lossforge.data.mnist.read_idx] checks all of it and names the
file and the problem when something is off.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lossforge.contract import Task
from lossforge.data.base import DataSplits
from lossforge.data.partition import check_fraction, partition_indices
from lossforge.data.samples import Split
from lossforge.data.standardize import standardize_features

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX dtype code → numpy dtype (big-endian, as stored)."""
_GZIP_MAGIC = b"\x1f\x8b"

MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
"""The four files, each with the MD5 of its published `.gz` form (checked after a download)."""
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Public mirrors serving `<file>.gz`, tried in order (the original yann.lecun.com site often refuses)."""


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes (whatever its name)."""
    if not path.is_file():
        raise ValueError(f"IDX file '{path}' does not exist (or is not a file).")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    # BadGzipFile is an OSError, a cut-off stream an EOFError
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(
            f"IDX file '{path}' is gzip-compressed but cannot be decompressed ({error}); it is probably "
            "truncated or corrupt: delete it and copy or download it again."
        ) from error


def read_idx(path: str | os.PathLike[str]) -> Tensor:
    """Read an IDX file (plain or gzipped) into a tensor of its stored shape and dtype.

    Every part is checked: the magic number, the dtype code, the header length and that the data holds
    exactly as many bytes as the sizes promise. Any problem raises a `ValueError` naming the file.

    Args:
        path: the file; gzip is recognised by content, not by name.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_idx(Path(folder) / "x-idx2-ubyte.gz", torch.arange(6, dtype=torch.uint8).reshape(2, 3))
        ...     read_idx(Path(folder) / "x-idx2-ubyte.gz")
        tensor([[0, 1, 2],
                [3, 4, 5]], dtype=torch.uint8)
    """
    path = Path(path)
    content = _read_bytes(path)
    if len(content) < 4:
        raise ValueError(f"IDX file '{path}' is {len(content)} bytes long, too short for the 4-byte magic number.")
    zero_a, zero_b, code, ndim = content[:4]
    if zero_a or zero_b:
        raise ValueError(
            f"IDX file '{path}' has a bad magic number 0x{content[:4].hex()}: an IDX file starts with two "
            "zero bytes, a dtype code and the number of dimensions (MNIST images: 0x00000803). Is it really "
            "an IDX file, and not e.g. an HTML error page saved by a failed download?"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{key:02X} ({value.name})" for key, value in IDX_DTYPES.items())
        raise ValueError(f"IDX file '{path}' has unknown dtype code 0x{code:02X}; known codes: {known}.")
    if ndim == 0:
        raise ValueError(f"IDX file '{path}' declares 0 dimensions; IDX data has at least one.")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"IDX file '{path}' is truncated: its {ndim} dimension sizes need a {header_size}-byte header, "
            f"but the file has only {len(content)} bytes."
        )
    dims = struct.unpack(f">{ndim}I", content[4:header_size])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(content) - header_size
    if actual != expected:
        problem = "is truncated" if actual < expected else f"has {actual - expected} unexpected trailing bytes"
        raise ValueError(
            f"IDX file '{path}' {problem}: its header promises shape {tuple(dims)} of {dtype.name} "
            f"({expected} bytes of data), but {actual} bytes follow the header. Copy or download it again."
        )
    values = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(dims)
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: str | os.PathLike[str], values: Tensor) -> None:
    """Write `values` as an IDX file, gzipped if `path` ends in `.gz`; the inverse of
    [read_idx][lossforge.data.mnist.read_idx].

    Handy for building small fixtures or converting other data to the IDX format.
    """
    array = values.detach().cpu().numpy()
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    if array.dtype not in codes:
        raise ValueError(f"IDX cannot store {values.dtype}; use one of {[d.name for d in codes]}.")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got a tensor of shape {tuple(values.shape)}")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)


def _candidates(root: Path, stem: str) -> list[Path]:
    # the dotted spelling ("train-images.idx3-ubyte") is how some mirrors and Kaggle name the files
    dotted = stem.replace("-idx", ".idx")
    return [root / name for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz")]


def find_mnist_files(root: str | os.PathLike[str]) -> dict[str, Path | None]:
    """Each of the four MNIST file names → its path in `root` (plain or `.gz`), or `None` if absent."""
    return find_idx_files(root, MNIST_FILES)


def find_idx_files(root: str | os.PathLike[str], stems: Iterable[str]) -> dict[str, Path | None]:
    """Each IDX file stem → its path in `root` (plain, `.gz`, or dotted `.idx` spelling), or `None`."""
    folder = Path(root).expanduser()
    return {stem: next((path for path in _candidates(folder, stem) if path.is_file()), None) for stem in stems}


def download_mnist(root: str | os.PathLike[str], *, timeout_s: float = 60.0) -> None:
    """Download the missing MNIST files into `root` as `.gz`, verifying each file's MD5."""
    download_idx_files(root, MNIST_FILES, MNIST_MIRRORS, label="MNIST", timeout_s=timeout_s)


def download_idx_files(
    root: str | os.PathLike[str],
    files: dict[str, str],
    mirrors: tuple[str, ...],
    *,
    label: str,
    timeout_s: float = 60.0,
) -> None:
    """Download the missing IDX files `files` (stem → MD5 of `<stem>.gz`) from `mirrors` into `root`.

    Each file is written under a temporary name and renamed only once verified, so an interrupted download
    never leaves a half-written file that looks complete. MNIST and Fashion-MNIST share this.
    """
    folder = Path(root).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for stem, path in find_idx_files(folder, files).items():
        if path is not None:
            continue
        failures = []
        for mirror in mirrors:
            url = f"{mirror}{stem}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:
                    content = response.read()
            except OSError as error:  # URLError, HTTPError and timeouts are all OSErrors
                failures.append(f"{url}: {error}")
                continue
            digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
            if digest != files[stem]:
                failures.append(f"{url}: MD5 {digest}, expected {files[stem]}")
                continue
            partial = folder / f"{stem}.gz.part"
            partial.write_bytes(content)
            partial.replace(folder / f"{stem}.gz")
            break
        else:
            raise RuntimeError(
                f"Could not download {stem}.gz into '{folder}'. Tried: "
                + "; ".join(failures)
                + f". Copy the four {label} files there by hand instead."
            )


def _missing_files_error(folder: Path, missing: list[str]) -> ValueError:
    return ValueError(
        f"MNIST files not found in '{folder.resolve()}': missing {', '.join(missing)} (each may be "
        f"gzipped, ending in .gz). Put the four IDX files there (e.g. from {MNIST_MIRRORS[0]}), point "
        "`root` at the folder that holds them (command line: dataset.root=/path/to/mnist), or pass "
        "download=True (dataset.download=true) to fetch them, about 11 MB."
    )


def _load_pair(images_path: Path, labels_path: Path) -> Split:
    """Images and labels of one MNIST file pair as a `Split`: (N, H·W) float32 in [0, 1], (N,) int64."""
    images, labels = read_idx_pair(images_path, labels_path, num_classes=10, label="MNIST")
    return Split(images.flatten(1).float() / 255.0, labels.long())  # (N, H·W), (N,)


def read_idx_pair(images_path: Path, labels_path: Path, *, num_classes: int, label: str) -> tuple[Tensor, Tensor]:
    """One images + labels IDX file pair, checked: uint8 $(N, H, W)$ images, uint8 $(N,)$ labels
    below `num_classes` (MNIST and Fashion-MNIST share this)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"IDX file '{images_path}' should hold uint8 images of shape (N, rows, columns), got "
            f"{images.dtype} of shape {tuple(images.shape)}."
        )
    if labels.dim() != 1 or labels.dtype != torch.uint8:
        raise ValueError(
            f"IDX file '{labels_path}' should hold uint8 labels of shape (N,), got {labels.dtype} of shape "
            f"{tuple(labels.shape)}."
        )
    if len(images) != len(labels):
        raise ValueError(
            f"'{images_path}' holds {len(images)} images but '{labels_path}' holds {len(labels)} labels; "
            "the two files must come from the same set."
        )
    if len(labels) and int(labels.max()) >= num_classes:
        raise ValueError(
            f"IDX file '{labels_path}' holds label {int(labels.max())}; {label} labels are 0-{num_classes - 1}."
        )
    return images, labels


def mnist(
    *,
    seed: int,
    root: str = "data/mnist",
    download: bool = False,
    val_fraction: float = 0.1,
) -> DataSplits:
    """Handwritten digits 28×28: 60,000 training images (split into train and val) and the 10,000 test set.

    The validation split is a seeded stratified `val_fraction` of the 60,000 training images; the test
    split is exactly the official t10k set. Pixels are scaled to [0, 1], then standardised with *one* mean
    and std fitted on the training split (about 0.13 and 0.31) rather than per pixel: per-pixel statistics
    would turn a border pixel that is lit in a handful of training images into a huge feature value.

    Args:
        seed: seeds the train/val split.
        root: folder holding the four IDX files (`~` is expanded; a relative path is relative to the
            working directory).
        download: fetch the missing files into `root` from a public mirror (about 11 MB).
        val_fraction: share of the 60,000 training images held out for validation, in (0, 1).

    Example (with the files in `data/mnist`):
        >>> data = mnist(seed=0)  # doctest: +SKIP
        >>> len(data.train), len(data.val), len(data.test), data.input_dim  # doctest: +SKIP
        (54000, 6000, 10000, 784)
    """
    check_fraction("val_fraction", val_fraction)  # no test_fraction: the test split is the t10k set
    folder = Path(root).expanduser()
    paths = find_mnist_files(folder)
    missing = [stem for stem, path in paths.items() if path is None]
    if missing and download:
        download_mnist(folder)
        paths = find_mnist_files(folder)
        missing = [stem for stem, path in paths.items() if path is None]
    if missing:
        raise _missing_files_error(folder, missing)
    located = {stem: path for stem, path in paths.items() if path is not None}
    train_all = _load_pair(located["train-images-idx3-ubyte"], located["train-labels-idx1-ubyte"])
    test = _load_pair(located["t10k-images-idx3-ubyte"], located["t10k-labels-idx1-ubyte"])
    parts = partition_indices(train_all.targets, {"val": val_fraction}, seed=seed)
    train, val = train_all.subset(parts["train"]), train_all.subset(parts["val"])
    train, val, test = standardize_features(train, val, test, per_feature=False)
    names = tuple(str(digit) for digit in range(10))
    return DataSplits("mnist", Task.MULTICLASS, train, val, test, num_outputs=10, class_names=names)
