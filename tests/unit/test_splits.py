"""Class-disjoint re-splitting (``lossforge.data.splits``) over arrays, tensors, streamed Datasets and Splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lossforge.data.base import Split
from lossforge.data.images import ImageFiles
from lossforge.data.splits import TargetedSubset, choose_test_classes, class_disjoint_split, is_class_disjoint


def toy(num_classes: int = 6, per_class: int = 10, *, tensors: bool = False) -> dict[str, object]:
    """Samples whose feature is their own index, so every sample can be traced through the re-split."""
    labels = np.repeat(np.arange(num_classes), per_class)
    features = np.arange(len(labels), dtype=np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(labels))
    features, labels = features[order], labels[order]
    cut = [int(len(labels) * 0.6), int(len(labels) * 0.8)]
    parts = np.split(np.arange(len(labels)), cut)
    wrap = torch.from_numpy if tensors else (lambda array: array)
    data: dict[str, object] = {
        name: (wrap(features[part]), wrap(labels[part]))
        for name, part in zip(("train", "val", "test"), parts, strict=True)
    }
    data["class_names"] = tuple("abcdefghij"[:num_classes])
    return data


@pytest.mark.parametrize("tensors", [False, True], ids=["numpy", "torch"])
def test_test_classes_are_never_trained_on_and_every_sample_is_kept_once(tensors: bool) -> None:
    data = toy(tensors=tensors)
    split = class_disjoint_split(data, seed=0, val_fraction=0.2)
    labels = {name: np.asarray(split[name][1]).tolist() for name in ("train", "val", "test")}
    assert set(labels["test"]) == {3, 4, 5} and split["provenance"]["test_classes"] == "3,4,5"
    assert set(labels["train"]) == set(labels["val"]) == {0, 1, 2}
    assert len(labels["val"]) == 6 and Counter(labels["val"]) == {0: 2, 1: 2, 2: 2}  # stratified 20 %
    ids = sorted(np.concatenate([np.asarray(split[name][0]).ravel() for name in ("train", "val", "test")]).tolist())
    assert ids == list(range(60))  # every sample exactly once
    assert split["classes_disjoint"] is True and split["class_names"] == data["class_names"]  # other keys kept
    assert isinstance(split["train"][0], torch.Tensor) is tensors


def test_the_split_seed_decides_the_validation_draw_and_seeded_test_classes() -> None:
    data = toy(num_classes=10)
    first = class_disjoint_split(data, seed=0)
    assert class_disjoint_split(data, seed=1)["provenance"] == first["provenance"] == {"test_classes": "5,6,7,8,9"}
    again = class_disjoint_split(data, seed=0)
    assert np.array_equal(again["val"][0], first["val"][0])
    assert not np.array_equal(class_disjoint_split(data, seed=1)["val"][0], first["val"][0])
    drawn = {class_disjoint_split(data, seed=seed, order="seeded")["provenance"]["test_classes"] for seed in range(5)}
    assert len(drawn) > 1 and all(len(classes.split(",")) == 5 for classes in drawn)
    seeded = class_disjoint_split(data, seed=3, order="seeded")["provenance"]
    assert seeded == class_disjoint_split(data, seed=3, order="seeded")["provenance"]


def test_streamed_splits_are_re_split_without_decoding_and_still_decode(tmp_path: Path) -> None:
    paths, labels = [], []
    for label in range(4):
        for index in range(3):
            path = tmp_path / f"{label}_{index}.png"
            Image.new("L", (2, 2), label * 60).save(path)
            paths.append(path)
            labels.append(label)
    targets = torch.tensor(labels)

    def files(part: slice) -> ImageFiles:
        return ImageFiles(paths[part], targets[part], channels=1, image_size=2, num_workers=3)

    data = {"train": files(slice(0, 6)), "val": files(slice(6, 9)), "test": files(slice(9, 12))}
    split = class_disjoint_split(data, seed=0, val_fraction=0.34)
    test = split["test"]
    assert isinstance(test, TargetedSubset) and test.num_workers == 3
    assert sorted(test.targets.tolist()) == [2, 2, 2, 3, 3, 3]
    for index in range(len(test)):
        image, target = test[index]
        assert int(image[0, 0, 0]) == int(target) * 60  # the image of the sample, not of another one
    assert set(split["train"].targets.tolist()) | set(split["val"].targets.tolist()) == {0, 1}


def test_lossforge_splits_come_back_as_splits() -> None:
    data = {
        name: Split(torch.arange(20, dtype=torch.float32)[:, None], torch.arange(20) % 4)
        for name in ("train", "val", "test")
    }
    split = class_disjoint_split(data, seed=0)
    assert isinstance(split["test"], Split) and set(split["test"].targets.tolist()) == {2, 3}
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": (np.zeros((6, 1)), np.array([0, 1, 2, 0, 1, 2]))}, "are missing"),
        (
            {name: (np.zeros((4, 1)), np.zeros(4, dtype=np.float32)) for name in ("train", "val", "test")},
            "integer class",
        ),
        ({name: (np.zeros((3, 1)), np.array([0, 1, 2])) for name in ("train", "val", "test")}, "at least 2 of each"),
    ],
    ids=["missing_split", "regression", "too_few_classes"],
)
def test_a_dataset_that_cannot_be_split_by_class_is_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        class_disjoint_split(data, seed=0)


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="order"):
        choose_test_classes(np.arange(6), seed=0, order="last")
    with pytest.raises(ValueError, match="test_class_share"):
        choose_test_classes(np.arange(6), seed=0, share=1.5)


def test_is_class_disjoint_reads_the_attribute_or_the_marker() -> None:
    def plain(*, seed: int) -> dict[str, object]:
        return {}

    def marked(*, seed: int) -> dict[str, object]:
        return {}

    marked.class_disjoint = True  # type: ignore[attr-defined]
    assert not is_class_disjoint(plain) and is_class_disjoint(marked)
    assert is_class_disjoint(plain, {"classes_disjoint": True})


def test_lossforge_data_splits_are_re_split_into_a_valid_data_splits() -> None:
    from lossforge.data import build_dataset
    from lossforge.data.splits import class_disjoint_data_splits

    digits = build_dataset("digits", seed=0)
    split = class_disjoint_data_splits(digits, seed=0)
    assert type(split) is type(digits) and split.num_outputs == 10  # validated again when rebuilt
    assert set(split.test.targets.tolist()) == {5, 6, 7, 8, 9}
    assert set(split.train.targets.tolist()) == set(split.val.targets.tolist()) == {0, 1, 2, 3, 4}
    assert len(split.train) + len(split.val) + len(split.test) == 1797


def test_dataset_class_disjoint_true_re_splits_when_loaded_and_is_cached_apart() -> None:
    from lossforge.data import clear_cache, load_dataset

    clear_cache()
    plain = load_dataset({"name": "digits", "split_seed": 0})
    by_class = load_dataset({"name": "digits", "split_seed": 0, "class_disjoint": True})
    assert not plain.class_disjoint and set(plain.test.targets.tolist()) == set(range(10))
    assert by_class.class_disjoint and set(by_class.test.targets.tolist()) == {5, 6, 7, 8, 9}
    assert by_class.provenance["test_classes"] == "5,6,7,8,9"
    assert load_dataset({"name": "digits", "split_seed": 0}) is plain  # the cache keeps them apart
    clear_cache()


def test_a_dataset_that_is_class_disjoint_already_is_not_re_split(tmp_path: Path) -> None:
    from image_layouts import write_cub

    from lossforge.data import clear_cache, load_dataset

    write_cub(tmp_path)
    clear_cache()
    config = {"name": "cub200", "root": str(tmp_path), "image_size": 4, "class_disjoint": True}
    data = load_dataset(config)
    assert set(data.test.targets.tolist()) == {2, 3} and "test_classes" not in data.provenance  # its own split
    clear_cache()


def test_the_protocol_re_splits_a_dataset_that_cannot_hold_classes_out() -> None:
    from lossforge.hydra_options import compose
    from lossforge.protocol.runner import _open_set

    base = compose(["dataset=image_folder", "loss=triplet"])
    assert _open_set(base, 5, embedding=True, class_folds=0) == (["++dataset.class_disjoint=true"], [])
    assert _open_set(base, 5, embedding=True, class_folds=0, disjoint=True) == ([], [])  # CUB, Cars196, SOP
    assert compose(["dataset=image_folder", "++dataset.class_disjoint=true"]).dataset.class_disjoint is True
    from lossforge.overrides import check_overrides

    assert check_overrides(["dataset=image_folder", "++dataset.class_disjoint=true"]) is None  # pre-flight passes it


def test_a_streamed_dataset_is_re_split_by_class_and_stays_streamed(tmp_path: Path) -> None:
    from image_layouts import class_folder

    from lossforge.data import clear_cache, load_dataset

    colours = {f"class{index}": (index * 40, 90, 255 - index * 40) for index in range(4)}
    root = class_folder(tmp_path / "four", per_class=5, classes=colours)
    clear_cache()
    config = {"name": "image_folder", "root": str(root), "image_size": 4, "memory_budget_mb": 0, "num_workers": 0}
    data = load_dataset({**config, "class_disjoint": True})
    assert not isinstance(data.test, Split) and len(data.test) == 10  # streamed, every image of classes 2 and 3
    assert set(data.test.targets.tolist()) == {2, 3} and set(data.train.targets.tolist()) == {0, 1}
    image, target = data.test.dataset[0]
    assert tuple(image.shape) == (3, 4, 4) and int(target) in (2, 3)
    clear_cache()
