"""Fetch a benchmark's official archive, verify its checksum, extract it without leaving `root`.

Nothing is downloaded unless a dataset is built with `download=True` (`dataset.download=true`). An
[Archive][lossforge.data.benchmarks.downloads.Archive] names its URL and published checksum;
[fetch_archive][lossforge.data.benchmarks.downloads.fetch_archive] streams it to `<file>.part`, checks the MD5 (what the
datasets' authors publish) or SHA-256, and renames it only once verified, so an interrupted download never looks
complete. [extract_archive][lossforge.data.benchmarks.downloads.extract_archive] refuses any member that would land
outside `root` — an absolute path, `..`, a link pointing out, a device file — in tar files (Python's `"data"` extraction
filter) and zip files alike.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Archive:
    """One downloadable file: where it is and what it must hash to.

    Args:
        url: `http(s)://` or `ftp://` address of the file.
        filename: the name it is saved under in `root`.
        md5: the published MD5 (hex) — most datasets publish only this.
        sha256: the SHA-256 (hex), when known; checked in preference to `md5`.
    """

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if not (self.md5 or self.sha256):
            raise ValueError(f"Archive {self.filename!r} needs a checksum (md5 or sha256) to be verified")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of `path` with `algorithm` (`"md5"` or `"sha256"`), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, archive: Archive) -> str | None:
    """`None` when `path` matches `archive`'s checksum, else a sentence saying what it hashed to."""
    algorithm, expected = ("sha256", archive.sha256) if archive.sha256 else ("md5", archive.md5)
    actual = file_digest(path, algorithm)
    if actual != (expected or "").lower():
        return f"{algorithm.upper()} {actual}, expected {expected}"
    return None


def fetch_archive(archive: Archive, folder: str | os.PathLike[str], *, timeout_s: float = 60.0) -> Path:
    """Download `archive` into `folder` (unless a verified copy is there already) and return its path.

    The bytes go to `<filename>.part` and are renamed after the checksum matches; a mismatch deletes the
    partial file and raises a `RuntimeError` naming the URL, the expected and the actual digest.
    """
    target_folder = Path(folder).expanduser()
    target_folder.mkdir(parents=True, exist_ok=True)
    target = target_folder / archive.filename
    if target.is_file() and verify(target, archive) is None:
        return target
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(archive.url, timeout=timeout_s) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out, length=2**20)
    except OSError as error:  # URLError, HTTPError and timeouts are all OSErrors
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"Could not download {archive.url} into '{target_folder}': {error}. Without internet, copy "
            f"{archive.filename} there by hand (or its extracted folder) and build the dataset with download=false."
        ) from error
    problem = verify(partial, archive)
    if problem:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"The file downloaded from {archive.url} does not match its published checksum ({problem}); it was "
            "deleted. The server may have sent an error page or a changed file: try again, or copy the file by hand."
        )
    partial.replace(target)
    return target


def _unsafe_members(names: list[str], root: Path) -> list[str]:
    unsafe = []
    for name in names:
        pure = PurePosixPath(name.replace("\\", "/"))
        resolved = (root / pure).resolve()
        if pure.is_absolute() or ".." in pure.parts or not resolved.is_relative_to(root.resolve()):
            unsafe.append(name)
    return unsafe


def extract_archive(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> None:
    """Extract a `.tar`/`.tar.gz`/`.tgz`/`.zip` archive into `root`, refusing members that escape it.

    A member named with an absolute path or `..` is refused (zip and tar would silently rewrite the name);
    tar files then go through Python's `"data"` filter (no links leading out, no device files, no set-uid
    bits). A refused archive raises a `ValueError` naming the member and
    extracts nothing more.
    """
    archive_path, target = Path(path), Path(root).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive_path):
        with zipfile.ZipFile(archive_path) as bundle:
            unsafe = _unsafe_members(bundle.namelist(), target)
            if unsafe:
                raise ValueError(
                    f"Refusing to extract '{archive_path}': member(s) {unsafe[:5]} would be written outside "
                    f"'{target}' (an absolute path or '..'). The archive is not the official one."
                )
            bundle.extractall(target)
        return
    if not tarfile.is_tarfile(archive_path):
        raise ValueError(f"'{archive_path}' is neither a tar nor a zip archive; delete it and download it again.")
    with tarfile.open(archive_path) as bundle:
        unsafe = _unsafe_members(bundle.getnames(), target)
        if unsafe:  # the "data" filter would rewrite an absolute name into root; refuse it as zip does
            raise ValueError(
                f"Refusing to extract '{archive_path}': member(s) {unsafe[:5]} would be written outside "
                f"'{target}' (an absolute path or '..'). The archive is not the official one."
            )
        try:
            bundle.extractall(target, filter="data")
        except tarfile.FilterError as error:
            raise ValueError(
                f"Refusing to extract '{archive_path}': {error}. The archive is not the official one."
            ) from error


def download_and_extract(archives: list[Archive], root: str | os.PathLike[str], *, timeout_s: float = 60.0) -> None:
    """Fetch each archive into `root` and extract the tar/zip ones there (a plain file stays as it is)."""
    for archive in archives:
        path = fetch_archive(archive, root, timeout_s=timeout_s)
        if zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
            extract_archive(path, root)
