"""Fashion-MNIST: Zalando's 28×28 clothing images in MNIST's IDX format, read by MNIST's strict IDX reader.

The four files have MNIST's names (`train-images-idx3-ubyte` … `t10k-labels-idx1-ubyte`, each
optionally `.gz`) and live in their own folder, `root`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossforge.data.benchmarks.common import carve_validation, not_found_error
from lossforge.data.mnist import download_idx_files, find_idx_files, read_idx_pair

FASHION_MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
"""The four files, each with the MD5 of its published `.gz` form."""
FASHION_MNIST_MIRRORS: tuple[str, ...] = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def fashion_mnist(
    *, seed: int, root: str = "data/fashion_mnist", download: bool = False, val_fraction: float = 0.1
) -> dict[str, Any]:
    """Fashion-MNIST: 60,000 training images (a stratified `val_fraction` for validation) and the official
    10,000 test images, `uint8` $(N, 1, 28, 28)$, 10 classes.

    Args:
        seed: the split seed: which training images are held out for validation.
        root: the folder holding the four IDX files.
        download: fetch the missing files (about 30 MB) into `root`, each checked against its MD5.
        val_fraction: share of the 60,000 training images used for validation.
    """
    folder = Path(root).expanduser()
    paths = find_idx_files(folder, FASHION_MNIST_FILES)
    if download and any(path is None for path in paths.values()):
        download_idx_files(folder, FASHION_MNIST_FILES, FASHION_MNIST_MIRRORS, label="Fashion-MNIST")
        paths = find_idx_files(folder, FASHION_MNIST_FILES)
    missing = [stem for stem, path in paths.items() if path is None]
    if missing:
        raise not_found_error("Fashion-MNIST", folder, f"the IDX files {', '.join(missing)} (each may end in .gz)")
    located = {stem: path for stem, path in paths.items() if path is not None}
    pairs = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = read_idx_pair(
            located[f"{prefix}-images-idx3-ubyte"],
            located[f"{prefix}-labels-idx1-ubyte"],
            num_classes=10,
            label="Fashion-MNIST",
        )
        pairs[split] = (images.numpy()[:, None], labels.numpy().astype("int64"))  # (N, 1, 28, 28), (N,)
    train, val = carve_validation(*pairs["train"], val_fraction=val_fraction, seed=seed)
    return {
        "train": train,
        "val": val,
        "test": pairs["test"],
        "class_names": FASHION_MNIST_CLASSES,
        "mean": fashion_mnist.mean,  # type: ignore[attr-defined]
        "std": fashion_mnist.std,  # type: ignore[attr-defined]
        "provenance": {"dataset": "fashion_mnist", "files_md5": ",".join(FASHION_MNIST_FILES.values())},
    }


fashion_mnist.task = "multiclass"  # type: ignore[attr-defined]
fashion_mnist.num_classes = 10  # type: ignore[attr-defined]
fashion_mnist.class_names = FASHION_MNIST_CLASSES  # type: ignore[attr-defined]
fashion_mnist.mean = (0.2860,)  # type: ignore[attr-defined]
fashion_mnist.std = (0.3530,)  # type: ignore[attr-defined]
