"""The metric-learning benchmarks of "A Metric Learning Reality Check": CUB-200-2011, Cars196 and
Stanford Online Products, each read from its official on-disk layout and split class-disjointly.

The convention (Musgrave et al. 2020, and the papers it re-evaluates): train and validate on the first
half of the classes, test on the second half — classes the embedding never saw. CUB: classes 1–100 /
101–200 (its `train_test_split.txt` is a *classification* split over all classes and is not used);
Cars196: classes 1–98 / 99–196 (its train/test flags are likewise a classification split); SOP: its
own files, `Ebay_train.txt` (classes 1–11,318) and `Ebay_test.txt` (11,319–22,634). Validation is a
seeded, class-stratified `val_fraction` of the training classes' images. Every function here has
`class_disjoint = True`, so the protocol does not re-split it.

Layouts read:

* **CUB-200-2011** (`CUB_200_2011/`): `images.txt` (`<image id> <path under images/>`),
  `image_class_labels.txt` (`<image id> <class id 1–200>`), `classes.txt` (`<class id> <name>`),
  `images/<class>/<file>.jpg`.
* **Cars196**, either layout: the original `cars_annos.mat` (struct array `annotations` with
  `relative_im_path`, `class` 1–196, `test`; cell array `class_names`) + `car_ims/`; or the
  devkit layout: `devkit/cars_meta.mat` (`class_names`), `devkit/cars_train_annos.mat` and
  `cars_test_annos_withlabels.mat` (in `devkit/` or beside it; `annotations` with `fname`,
  `class`) + `cars_train/` and `cars_test/`. `.mat` files are read with `scipy.io.loadmat`.
* **Stanford Online Products** (`Stanford_Online_Products/`): `Ebay_train.txt` and `Ebay_test.txt`
  with a header line and rows `<image_id> <class_id> <super_class_id> <path>`, paths relative to the
  folder (`bicycle_final/111085122871_0.JPG`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lossforge.data.benchmarks.common import (
    class_halves,
    find_folder,
    image_benchmark,
    missing_files,
    not_found_error,
)
from lossforge.data.benchmarks.downloads import Archive, download_and_extract

ARCHIVES: dict[str, list[Archive]] = {
    "cub200": [
        Archive(
            url="https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
            filename="CUB_200_2011.tgz",
            md5="97eceeb196236b17998738112f37df78",
        )
    ],
    "cars196": [
        Archive(
            url="http://ai.stanford.edu/~jkrause/car196/car_ims.tgz",
            filename="car_ims.tgz",
            md5="d5c8f0aa497503f355e17dc7886c3f14",
        ),
        Archive(
            url="http://ai.stanford.edu/~jkrause/car196/cars_annos.mat",
            filename="cars_annos.mat",
            md5="b407c6086d669747186bd1d764ff9dbc",
        ),
    ],
    "sop": [
        Archive(
            url="ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip",
            filename="Stanford_Online_Products.zip",
            md5="7f73d41a2f44250d4779881525aea32e",
        )
    ],
}
"""The official archives and their published MD5 sums. The Cars196 files were served from Stanford's
ai.stanford.edu/~jkrause pages, which have been offline at times: copy them by hand when they are."""


def _located(name: str, root: str, download: bool, folder_name: str, marker: str, expected: str) -> Path:
    folder = find_folder(root, folder_name, marker)
    if folder is None and download:
        download_and_extract(ARCHIVES[name], root)
        folder = find_folder(root, folder_name, marker)
    if folder is None:
        raise not_found_error(name, root, expected)
    return folder


def _table(path: Path, columns: int, *, header: bool = False) -> list[list[str]]:
    """Rows of a whitespace-separated text file, each split into `columns` fields (the last keeps spaces)."""
    if not path.is_file():
        raise ValueError(f"'{path}' does not exist; the dataset's folder is incomplete — extract the archive again.")
    lines = path.read_text(encoding="utf-8").splitlines()[1 if header else 0 :]
    rows = [line.split(maxsplit=columns - 1) for line in lines if line.strip()]
    bad = [number for number, row in enumerate(rows, start=2 if header else 1) if len(row) != columns]
    if bad:
        raise ValueError(f"'{path}': line(s) {bad[:5]} do not have {columns} fields.")
    return rows


def _split_halves(paths: list[Path], targets: np.ndarray, num_classes: int) -> dict[str, tuple[list[Path], np.ndarray]]:
    first = class_halves(targets, num_classes)
    return {
        "trainval": ([path for path, keep in zip(paths, first, strict=True) if keep], targets[first]),
        "test": ([path for path, keep in zip(paths, first, strict=True) if not keep], targets[~first]),
    }


def cub200(
    *,
    seed: int,
    root: str = "data/cub200",
    download: bool = False,
    image_size: int | list[int] = 224,
    channels: int = 3,
    val_fraction: float = 0.15,
    memory_budget_mb: float = 2048,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """CUB-200-2011 (11,788 bird photos, 200 species): classes 1–100 train and validate, 101–200 test.

    Args:
        seed: the split seed: which images of the training classes are held out for validation.
        root: `CUB_200_2011/` or the folder that holds it.
        download: fetch and extract the official archive (1.1 GB) into `root` when it is missing.
        image_size: side every image is resized to (or `[height, width]`).
        channels: 3 (RGB) or 1 (greyscale).
        val_fraction: share of the training classes' images held out for validation.
        memory_budget_mb: MiB of decoded images held in memory; above it they stream from disk.
        num_workers: decoding threads / DataLoader workers; `None`: the cores this job may use.
    """
    folder = _located("cub200", root, download, "CUB_200_2011", "images.txt", "CUB_200_2011/ with images.txt")
    relative = {image_id: path for image_id, path in _table(folder / "images.txt", 2)}
    labels = {image_id: int(label) for image_id, label in _table(folder / "image_class_labels.txt", 2)}
    names_file = folder / "classes.txt"
    class_ids = sorted({*labels.values()})
    names = dict(_table(names_file, 2)) if names_file.is_file() else {}
    num_classes = max(len(names), max(class_ids, default=0))  # 200: classes.txt lists every class
    unlabelled = sorted(set(relative) - set(labels), key=int)
    if unlabelled:
        raise ValueError(
            f"CUB-200-2011: image ids {unlabelled[:5]} of images.txt have no line in image_class_labels.txt."
        )
    ids = sorted(relative, key=int)
    paths = [folder / "images" / relative[image_id] for image_id in ids]
    missing_files(paths, "CUB-200-2011", folder)
    targets = np.asarray([labels[image_id] - 1 for image_id in ids], dtype=np.int64)
    class_names = [names.get(str(index + 1), str(index + 1)) for index in range(num_classes)]
    return image_benchmark(
        "cub200",
        folder,
        _split_halves(paths, targets, num_classes),
        class_names=class_names,
        seed=seed,
        val_fraction=val_fraction,
        image_size=image_size,
        channels=channels,
        memory_budget_mb=memory_budget_mb,
        num_workers=num_workers,
    )


def _mat_annotations(path: Path, path_field: str) -> list[tuple[str, int]]:
    """`(path, class id)` of every entry of a Cars196 `.mat` file's `annotations` struct array."""
    from scipy.io import loadmat  # deferred: scipy is only needed for Cars196

    content = loadmat(path, squeeze_me=True)
    if "annotations" not in content:
        raise ValueError(f"'{path}' has no 'annotations' struct array; is it a Cars196 annotation file?")
    annotations = np.atleast_1d(content["annotations"])
    fields = annotations.dtype.names or ()
    if path_field not in fields or "class" not in fields:
        raise ValueError(f"'{path}': annotations have fields {list(fields)}; expected {path_field!r} and 'class'.")
    return [(str(entry[path_field]), int(entry["class"])) for entry in annotations]


def _mat_class_names(path: Path) -> list[str]:
    from scipy.io import loadmat

    if not path.is_file():
        return []
    return [str(name) for name in np.atleast_1d(loadmat(path, squeeze_me=True).get("class_names", []))]


def _cars_entries(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image paths, class ids (1–196) and class names from whichever Cars196 layout `folder` holds."""
    if (folder / "cars_annos.mat").is_file():  # the original layout
        entries = _mat_annotations(folder / "cars_annos.mat", "relative_im_path")
        names = _mat_class_names(folder / "cars_annos.mat")
        return [folder / path for path, _ in entries], [label for _, label in entries], names
    devkit = folder / "devkit"
    paths: list[Path] = []
    labels: list[int] = []
    for split, annotation_file in (
        ("cars_train", "cars_train_annos.mat"),
        ("cars_test", "cars_test_annos_withlabels.mat"),
    ):
        located = next((p for p in (devkit / annotation_file, folder / annotation_file) if p.is_file()), None)
        if located is None:
            raise ValueError(
                f"Cars196 (devkit layout) in '{folder}': {annotation_file} not found in devkit/ or beside it. The "
                "test labels come as cars_test_annos_withlabels.mat, published separately from the devkit."
            )
        entries = _mat_annotations(located, "fname")
        paths += [folder / split / name for name, _ in entries]
        labels += [label for _, label in entries]
    return paths, labels, _mat_class_names(devkit / "cars_meta.mat")


def cars196(
    *,
    seed: int,
    root: str = "data/cars196",
    download: bool = False,
    image_size: int | list[int] = 224,
    channels: int = 3,
    val_fraction: float = 0.15,
    memory_budget_mb: float = 2048,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Cars196 (16,185 car photos, 196 models): classes 1–98 train and validate, 99–196 test.

    Reads the original layout (`cars_annos.mat` + `car_ims/`) or the devkit layout
    (`devkit/*.mat` + `cars_train/` + `cars_test/`), whichever `root` holds; both give the
    same 16,185 images and labels.

    Args:
        seed: the split seed: which images of the training classes are held out for validation.
        root: the folder holding `cars_annos.mat` (or `devkit/`), or its parent `cars196/`.
        download: fetch `car_ims.tgz` and `cars_annos.mat` (1.9 GB) into `root` when missing.
        image_size: side every image is resized to (or `[height, width]`).
        channels: 3 (RGB) or 1 (greyscale).
        val_fraction: share of the training classes' images held out for validation.
        memory_budget_mb: MiB of decoded images held in memory; above it they stream from disk.
        num_workers: decoding threads / DataLoader workers; `None`: the cores this job may use.
    """
    folder = find_folder(root, "cars196", "cars_annos.mat") or find_folder(root, "cars196", "devkit")
    if folder is None:
        folder = _located(
            "cars196",
            root,
            download,
            "cars196",
            "cars_annos.mat",
            "cars_annos.mat + car_ims/, or devkit/ + cars_train/ + cars_test/",
        )
    paths, labels, names = _cars_entries(folder)
    missing_files(paths, "Cars196", folder)
    num_classes = max(len(names), max(labels, default=0))  # 196: class_names lists every class
    targets = np.asarray(labels, dtype=np.int64) - 1
    class_names = names if len(names) == num_classes else [str(index + 1) for index in range(num_classes)]
    return image_benchmark(
        "cars196",
        folder,
        _split_halves(paths, targets, num_classes),
        class_names=class_names,
        seed=seed,
        val_fraction=val_fraction,
        image_size=image_size,
        channels=channels,
        memory_budget_mb=memory_budget_mb,
        num_workers=num_workers,
    )


def _sop_rows(folder: Path, file_name: str) -> tuple[list[Path], list[int]]:
    rows = _table(folder / file_name, 4, header=True)
    paths = []
    for row in rows:
        path = folder / row[3]
        if not path.is_file() and (folder / "images" / row[3]).is_file():  # some copies nest them in images/
            path = folder / "images" / row[3]
        paths.append(path)
    return paths, [int(row[1]) for row in rows]


def stanford_online_products(
    *,
    seed: int,
    root: str = "data/sop",
    download: bool = False,
    image_size: int | list[int] = 224,
    channels: int = 3,
    val_fraction: float = 0.15,
    memory_budget_mb: float = 2048,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Stanford Online Products (120,053 product photos, 22,634 products): `Ebay_train.txt` (classes
    1–11,318) trains and validates, `Ebay_test.txt` (11,319–22,634) tests.

    At 224 px the decoded images take about 18 GB, so with the default `memory_budget_mb` they stream
    from disk in `num_workers` DataLoader workers.

    Args:
        seed: the split seed: which images of the training classes are held out for validation.
        root: `Stanford_Online_Products/` or the folder that holds it.
        download: fetch and extract the official archive (2.9 GB) into `root` when it is missing.
        image_size: side every image is resized to (or `[height, width]`).
        channels: 3 (RGB) or 1 (greyscale).
        val_fraction: share of the training classes' images held out for validation.
        memory_budget_mb: MiB of decoded images held in memory; above it they stream from disk.
        num_workers: decoding threads / DataLoader workers; `None`: the cores this job may use.
    """
    folder = _located(
        "sop",
        root,
        download,
        "Stanford_Online_Products",
        "Ebay_train.txt",
        "Stanford_Online_Products/ with Ebay_train.txt and Ebay_test.txt",
    )
    train_paths, train_labels = _sop_rows(folder, "Ebay_train.txt")
    test_paths, test_labels = _sop_rows(folder, "Ebay_test.txt")
    missing_files(train_paths + test_paths, "Stanford Online Products", folder)
    shared = sorted(set(train_labels) & set(test_labels))
    if shared:
        raise ValueError(
            f"Stanford Online Products: class ids {shared[:5]} are in both Ebay_train.txt and Ebay_test.txt."
        )
    num_classes = max(train_labels + test_labels, default=0)
    files = {
        "trainval": (train_paths, np.asarray(train_labels, dtype=np.int64) - 1),
        "test": (test_paths, np.asarray(test_labels, dtype=np.int64) - 1),
    }
    return image_benchmark(
        "stanford_online_products",
        folder,
        files,
        class_names=[str(index + 1) for index in range(num_classes)],
        seed=seed,
        val_fraction=val_fraction,
        image_size=image_size,
        channels=channels,
        memory_budget_mb=memory_budget_mb,
        num_workers=num_workers,
    )


# What lossforge reads from the dataset functions (the dataset contract): the task, and that the test
# classes are never trained on (so the protocol does not re-split them).
for _function in (cub200, cars196, stanford_online_products):
    _function.task = "multiclass"  # type: ignore[attr-defined]
    _function.class_disjoint = True  # type: ignore[attr-defined]
