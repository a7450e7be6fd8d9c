"""Decoding image files with Pillow: one file into `uint8` $(C, H, W)$, many in parallel threads, the
sizes and channels checked, and errors that name every unreadable file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

MAX_NAMED_FAILURES = 20
"""How many unreadable files one error names before it says "and N more"."""


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
    """One error naming every unreadable file (up to
    [MAX_NAMED_FAILURES][lossforge.data.image_decoding.MAX_NAMED_FAILURES]), so a user fixes them all at once instead
    of one per run."""
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
