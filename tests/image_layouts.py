"""Miniature copies of the on-disk layouts the image datasets read, written with the real formats: PNG/JPEG
files by Pillow, Python 2-style pickles (as the official CIFAR batches are), IDX files, MATLAB ``.mat`` files
by ``scipy.io.savemat``, and the benchmarks' text files. Shared by the image tests and the dataset contract
test (:data:`IMAGE_LAYOUTS` gives, per registered image dataset, the parameters that build it offline)."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from lossforge.data.benchmarks import cifar
from lossforge.data.mnist import write_idx

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "owl": (30, 30, 200)}


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> Path:
    """A solid-colour image with one marked pixel (so images of a class differ), saved by its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    image.putpixel((0, 0), (len(path.stem) * 7 % 256, 0, 0))
    image.save(path)
    return path


def class_folder(root: Path, per_class: int = 10, classes: dict[str, tuple[int, int, int]] = COLOURS) -> Path:
    for name, colour in classes.items():
        for index in range(per_class):
            suffix = ".jpg" if index % 5 == 4 else ".png"
            write_image(root / name / f"{name}_{index:03d}{suffix}", colour)
    return root


# -- writing the official formats ------------------------------------------------------------------------
class Python2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    """Writes byte strings as Python 2's ``str`` (``BINSTRING``), as the official CIFAR batches were written."""

    def save_bytes(self, obj: bytes) -> None:
        size = len(obj)
        self.write(  # type: ignore[attr-defined]
            pickle.SHORT_BINSTRING + bytes([size]) + obj
            if size < 256
            else pickle.BINSTRING + struct.pack("<i", size) + obj
        )
        self.memoize(obj)  # type: ignore[attr-defined]

    dispatch: ClassVar[dict[type, Any]] = {**pickle._Pickler.dispatch, bytes: save_bytes}


def python2_pickle(content: Any) -> bytes:
    stream = io.BytesIO()
    Python2Pickler(stream, protocol=2).dump(content)
    # numpy 1 (which wrote the official files) named the module numpy.core.multiarray
    return stream.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def cifar_images(count: int, labels: list[int]) -> np.ndarray:
    """``(count, 3072)`` uint8 rows whose red plane is the label × 20 (so a reshaping bug shows)."""
    rows = np.zeros((count, 3, 32, 32), dtype=np.uint8)
    rows[:, 0] = np.asarray(labels, dtype=np.uint8)[:, None, None] * 20
    rows[:, 2, 31, 31] = 255  # the last blue pixel
    rows[:, 1, 0, 0] = np.arange(count) % 256  # every image differs
    return rows.reshape(count, 3072)


def write_cifar10(root: Path, per_batch: int = 10) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index in range(1, 6):
        labels = [(i + index) % 10 for i in range(per_batch)]
        batch = {b"batch_label": b"training batch", b"labels": labels, b"data": cifar_images(per_batch, labels),
                 b"filenames": [b"f.png"] * per_batch}  # fmt: skip
        (folder / f"data_batch_{index}").write_bytes(python2_pickle(batch))
    labels = list(range(10))
    (folder / "test_batch").write_bytes(python2_pickle({b"labels": labels, b"data": cifar_images(10, labels)}))
    names = [name.encode() for name in cifar.CIFAR10_CLASSES]
    (folder / "batches.meta").write_bytes(python2_pickle({b"label_names": names, b"num_vis": 3072}))
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, count in (("train", 200), ("test", 100)):
        fine = [i % 100 for i in range(count)]
        content = {
            b"fine_labels": fine,
            b"coarse_labels": [f // 5 for f in fine],
            b"data": cifar_images(count, [0] * count),
        }
        (folder / name).write_bytes(python2_pickle(content))
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}  # fmt: skip
    (folder / "meta").write_bytes(python2_pickle(meta))
    return folder


def photo(path: Path, shade: int) -> None:
    """A photo whose colour encodes its class (``shade``) and whose blue channel its file (each file differs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blue = int.from_bytes(hashlib.sha256(path.name.encode()).digest()[:1], "big")
    Image.new("RGB", (9, 7), (shade, 255 - shade, blue)).save(path)


def write_cub(root: Path, classes: int = 4, per_class: int = 5) -> Path:
    folder = root / "CUB_200_2011"
    images: list[str] = []
    labels: list[str] = []
    split: list[str] = []
    for class_id in range(1, classes + 1):
        for index in range(per_class):
            image_id = len(images) + 1
            relative = f"{class_id:03d}.Bird_{class_id}/Bird_{class_id}_{index:04d}.jpg"
            photo(folder / "images" / relative, class_id * 40)
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {index % 2}")
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (folder / "classes.txt").write_text("".join(f"{c} {c:03d}.Bird_{c}\n" for c in range(1, classes + 1)))
    return folder


def mat_annotations(rows: list[tuple[Any, ...]], names: list[str]) -> np.ndarray:
    fields = [(name, "O") for name in names]
    return np.array(rows, dtype=fields)


def write_cars_original(root: Path, classes: int = 4, per_class: int = 4) -> Path:
    from scipy.io import savemat

    rows: list[tuple[Any, ...]] = []
    for class_id in range(1, classes + 1):
        for index in range(per_class):
            relative = f"car_ims/{len(rows) + 1:06d}.jpg"
            photo(root / relative, class_id * 50)
            rows.append((relative, 1, 2, 8, 6, class_id, index % 2))
    annotations = mat_annotations(
        rows, ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    )
    names = np.array([f"Car {c}" for c in range(1, classes + 1)], dtype=object)
    savemat(root / "cars_annos.mat", {"annotations": annotations, "class_names": names})
    return root


def write_cars_devkit(root: Path, classes: int = 4) -> Path:
    from scipy.io import savemat

    (root / "devkit").mkdir(parents=True)
    for split, annotation_file in (
        ("cars_train", "devkit/cars_train_annos.mat"),
        ("cars_test", "cars_test_annos_withlabels.mat"),
    ):
        rows: list[tuple[Any, ...]] = []
        for class_id in range(1, classes + 1):
            for index in range(2):
                name = f"{class_id:02d}{index}.jpg"
                photo(root / split / name, class_id * 50)
                rows.append((1, 2, 8, 6, class_id, name))
        annotations = mat_annotations(rows, ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"])
        savemat(root / annotation_file, {"annotations": annotations})
    names = np.array([f"Car {c}" for c in range(1, classes + 1)], dtype=object)
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": names})
    return root


def write_sop(root: Path) -> Path:
    folder = root / "Stanford_Online_Products"
    for file_name, class_ids in (("Ebay_train.txt", [1, 2, 3]), ("Ebay_test.txt", [4, 5])):
        lines = ["image_id class_id super_class_id path"]
        for class_id in class_ids:
            for index in range(4):
                relative = f"bicycle_final/{class_id}_{index}.JPG"
                photo(folder / relative, class_id * 40)
                lines.append(f"{len(lines)} {class_id} 1 {relative}")
        (folder / file_name).write_text("\n".join(lines) + "\n")
    return folder


def write_fashion(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    contents = {}
    for prefix, count in (("train", 40), ("t10k", 20)):
        labels = (torch.arange(count) % 10).to(torch.uint8)
        images = torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)
        images[:, 0, 0] = labels
        for stem, values in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            write_idx(folder / f"{stem}.gz", values)
            contents[stem] = (folder / f"{stem}.gz").read_bytes()
    return contents


def _layout(write: Callable[[Path], Any], folder: str = "", **params: Any) -> Callable[[Path], dict[str, Any]]:
    def build(tmp_path: Path) -> dict[str, Any]:
        write(tmp_path / folder if folder else tmp_path)
        return {"root": str(tmp_path), **params}

    return build


#: Registered image dataset → a function writing its miniature layout under a folder and returning the
#: dataset parameters that read it (small images, so that the contract tests stay fast).
IMAGE_LAYOUTS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "image_folder": _layout(class_folder, "", image_size=8),
    "cifar10": _layout(write_cifar10),
    "cifar100": _layout(write_cifar100),
    "fashion_mnist": _layout(write_fashion),
    "cub200": _layout(write_cub, image_size=8, val_fraction=0.5),
    "cars196": _layout(write_cars_original, "cars196", image_size=8, val_fraction=0.5),
    "sop": _layout(write_sop, image_size=8, val_fraction=0.5),
}
