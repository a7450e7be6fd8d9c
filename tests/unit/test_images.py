"""``dataset=image_folder`` on miniature folders of real PNG/JPEG files written by Pillow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from image_layouts import COLOURS, class_folder, write_image
from PIL import Image
from torch.utils.data import DataLoader

from lossforge.data.images import (
    ImageFiles,
    decode_image,
    default_num_workers,
    file_list_sha256,
    image_folder,
)


def test_class_folders_decode_to_uint8_nchw_splits_that_partition_every_file(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets")
    (root / "cat" / "notes.txt").write_text("not an image: ignored by suffix")
    (root / ".cache").mkdir()
    write_image(root / ".cache" / "hidden.png", (0, 0, 0))  # a hidden folder is not a class
    data = image_folder(seed=0, root=str(root), image_size=8, val_fraction=0.2, test_fraction=0.2)
    assert data["class_names"] == ("cat", "dog", "owl")
    sizes = {}
    for name in ("train", "val", "test"):
        images, targets = data[name]
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 8, 8)
        assert targets.dtype == np.int64 and len(targets) == len(images)
        sizes[name] = len(targets)
        assert sorted(set(targets.tolist())) == [0, 1, 2]  # stratified: every class in every split
    assert sizes == {"train": 18, "val": 6, "test": 6}
    # the class's colour survives decoding and resizing (the marked pixel aside)
    images, targets = data["train"]
    owl = images[targets == 2]
    assert np.abs(owl[:, :, 4, 4].astype(int) - np.array(COLOURS["owl"])).max() <= 8  # JPEG is lossy
    assert data["provenance"]["num_files"] == 30
    assert len(data["provenance"]["file_list_sha256"]) == 64


def test_the_split_is_a_function_of_the_split_seed(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets")
    first = image_folder(seed=3, root=str(root), image_size=4)
    again = image_folder(seed=3, root=str(root), image_size=4)
    other = image_folder(seed=4, root=str(root), image_size=4)
    assert np.array_equal(first["test"][0], again["test"][0])
    assert not np.array_equal(first["test"][0], other["test"][0])
    # the provenance digest is about the files, not the split
    assert first["provenance"] == other["provenance"]


def test_channels_one_keeps_grey_and_image_size_takes_height_width(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets", per_class=4)
    data = image_folder(seed=0, root=str(root), image_size=[6, 10], channels=1, val_fraction=0.25, test_fraction=0.25)
    images, targets = data["train"]
    assert images.shape[1:] == (1, 6, 10)
    expected_grey = round(0.299 * 30 + 0.587 * 200 + 0.114 * 30)  # ITU-R 601-2 luma, Pillow's "L"
    dogs = images[targets == 1]
    assert abs(int(dogs[0, 0, 3, 5]) - expected_grey) <= 2
    assert len(data["mean"]) == 1 and len(data["std"]) == 1


def test_mean_and_std_are_the_training_split_s_per_channel_statistics(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets")
    data = image_folder(seed=0, root=str(root), image_size=4)
    images = data["train"][0].astype(np.float64) / 255
    assert data["mean"] == pytest.approx(images.mean(axis=(0, 2, 3)), abs=1e-4)
    assert data["std"] == pytest.approx(images.std(axis=(0, 2, 3)), abs=1e-4)


def test_train_val_test_subtrees_are_used_as_given_and_a_missing_one_is_carved_from_train(tmp_path: Path) -> None:
    root = tmp_path / "split"
    class_folder(root / "train", per_class=6)
    class_folder(root / "test", per_class=2, classes={"cat": COLOURS["cat"], "dog": COLOURS["dog"]})
    write_image(root / "test" / "zebra" / "z.png", (1, 2, 3))  # a class seen only in test still counts
    data = image_folder(seed=0, root=str(root), image_size=4, val_fraction=0.25)
    assert data["class_names"] == ("cat", "dog", "owl", "zebra")
    assert len(data["test"][1]) == 5  # exactly test/, nothing carved from it
    assert sorted(data["test"][1].tolist()) == [0, 0, 1, 1, 3]
    assert len(data["train"][1]) + len(data["val"][1]) == 18
    assert len(data["val"][1]) == round(18 * 0.25)
    assert 3 not in data["train"][1]


def test_above_the_memory_budget_the_splits_stream_from_disk_with_the_same_pixels(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets")
    held = image_folder(seed=0, root=str(root), image_size=8, num_workers=2)
    streamed = image_folder(seed=0, root=str(root), image_size=8, memory_budget_mb=0.001, num_workers=2)
    train = streamed["train"]
    assert isinstance(train, ImageFiles) and train.num_workers == 2
    assert isinstance(held["train"], tuple)
    assert torch.equal(train.targets, torch.from_numpy(held["train"][1]))  # targets without decoding
    loader = DataLoader(train, batch_size=7, num_workers=train.num_workers)
    images = torch.cat([batch for batch, _ in loader])
    assert images.dtype == torch.uint8
    assert torch.equal(images, torch.from_numpy(held["train"][0]))
    assert streamed["provenance"] == held["provenance"]


def test_the_default_worker_count_is_the_cores_the_job_was_given() -> None:
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})  # what the parallel launcher does to each job
        assert default_num_workers() == 1
    finally:
        os.sched_setaffinity(0, before)
    assert default_num_workers() == len(before)


@pytest.mark.parametrize("budget_mb", [2048, 0.0001], ids=["in_memory", "streamed"])
def test_every_unreadable_file_is_named_in_one_error(tmp_path: Path, budget_mb: float) -> None:
    root = class_folder(tmp_path / "pets", per_class=4)
    (root / "cat" / "broken.png").write_bytes(b"<html>404 not found</html>")
    (root / "dog" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="2 of 14 image files cannot be read") as caught:
        image_folder(
            seed=0, root=str(root), image_size=4, memory_budget_mb=budget_mb, val_fraction=0.3, test_fraction=0.3
        )
    message = str(caught.value)
    assert "broken.png" in message and "empty.jpg" in message


def test_a_truncated_file_is_named_when_it_is_decoded(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets", per_class=4)
    whole = write_image(root / "owl" / "cut.png", (9, 9, 9), size=(64, 64)).read_bytes()
    (root / "owl" / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"cut\.png"):
        image_folder(seed=0, root=str(root), image_size=4, val_fraction=0.3, test_fraction=0.3)


def test_a_long_list_of_unreadable_files_is_cut_with_a_count(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets", per_class=4)
    for index in range(25):
        (root / "cat" / f"bad_{index:02d}.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"(?s)25 of 37 .*and 5 more") as caught:
        image_folder(seed=0, root=str(root), image_size=4)
    assert str(caught.value).count("bad_") == 20  # each named once


def test_file_list_digest_changes_with_names_and_sizes_not_with_timestamps(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets", per_class=2)
    paths = sorted(root.rglob("*.png"))
    digest = file_list_sha256(root, paths)
    os.utime(paths[0], (0, 0))
    assert file_list_sha256(root, paths) == digest
    assert file_list_sha256(root, list(reversed(paths))) == digest  # order of discovery does not matter
    renamed = paths[0].rename(paths[0].with_name("renamed.png"))
    assert file_list_sha256(root, [renamed, *paths[1:]]) != digest
    renamed.write_bytes(renamed.read_bytes() + b"\0")
    assert file_list_sha256(root, [renamed, *paths[1:]]) != digest


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "does not exist"),
        ("no_classes", "no class sub-folders"),
        ("empty_class", r"class folder\(s\) \['empty'\] hold no image files"),
        ("val_without_train", "no train/ sub-tree"),
    ],
)
def test_a_folder_that_is_not_an_image_folder_is_explained(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "data"
    if layout == "no_classes":
        root.mkdir()
        write_image(root / "loose.png", (1, 1, 1))
    elif layout == "empty_class":
        class_folder(root, per_class=4)
        (root / "empty").mkdir()
    elif layout == "val_without_train":
        class_folder(root / "val", per_class=2)
    with pytest.raises(ValueError, match=message):
        image_folder(seed=0, root=str(root), image_size=4)


@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [
        ("channels", 2, "channels"),
        ("image_size", [4], "image_size"),
        ("memory_budget_mb", -1, "memory_budget_mb"),
        ("num_workers", -2, "num_workers"),
    ],
)
def test_bad_parameters_are_named(tmp_path: Path, parameter: str, value: object, message: str) -> None:
    root = class_folder(tmp_path / "pets", per_class=4)
    with pytest.raises(ValueError, match=message):
        image_folder(seed=0, root=str(root), **{parameter: value})  # type: ignore[arg-type]


def test_decode_image_converts_palette_and_alpha_images(tmp_path: Path) -> None:
    Image.new("RGBA", (5, 5), (10, 20, 30, 0)).save(tmp_path / "alpha.png")
    Image.new("P", (5, 5), 3).save(tmp_path / "palette.gif")
    assert decode_image(tmp_path / "alpha.png", channels=3, image_size=5).shape == (3, 5, 5)
    assert decode_image(tmp_path / "palette.gif", channels=1, image_size=2).shape == (1, 2, 2)


def test_a_streamed_split_has_a_fingerprint_of_its_files_in_order_without_decoding(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets", per_class=2)
    paths = sorted(root.rglob("*.png"))
    targets = torch.zeros(len(paths), dtype=torch.int64)
    split = ImageFiles(paths, targets, channels=3, image_size=4)
    assert split.fingerprint == ImageFiles(paths, targets, channels=3, image_size=4).fingerprint
    assert split.fingerprint != ImageFiles(paths[::-1], targets, channels=3, image_size=4).fingerprint  # order
    assert split.fingerprint != ImageFiles(paths, targets, channels=1, image_size=4).fingerprint  # decoding
    before = split.fingerprint
    moved = tmp_path / "moved"
    root.rename(moved)  # the same files in another folder: the same fingerprint
    elsewhere = ImageFiles([moved / path.relative_to(root) for path in paths], targets, channels=3, image_size=4)
    assert elsewhere.fingerprint == before
