"""Tests for lossforge.data.adapter: every shape of dataset a plugin may return becomes validated DataSplits."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lossforge.data import DatasetContractError, to_data_splits
from lossforge.data.base import StreamedSplit, split_fingerprint
from lossforge.data.loaders import make_loader


def declared(task: str, **attributes: Any) -> Any:
    def dataset(*, seed: int) -> None: ...

    dataset.task = task  # type: ignore[attr-defined]
    for key, value in attributes.items():
        setattr(dataset, key, value)
    return dataset


def arrays(shape: tuple[int, ...], labels: list[int], dtype: Any = np.float64) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        name: ((rng.random((len(labels), *shape)) * 255).astype(dtype), np.array(labels))
        for name in ("train", "val", "test")
    }


def test_a_mapping_of_arrays_of_any_sample_shape_becomes_float32_splits() -> None:
    data = to_data_splits(arrays((2, 3, 4), [0, 1, 2, 1]), name="toy", declared=declared("multiclass"))
    assert data.input_shape == (2, 3, 4) and data.train.features.dtype == torch.float32
    assert data.train.targets.dtype == torch.int64 and data.num_outputs == 3
    assert data.class_names == ("0", "1", "2")  # every class named: figures and reports list them


def test_uint8_images_stay_uint8_with_their_mean_and_std() -> None:
    data = to_data_splits(
        arrays((3, 8, 8), [0, 1], dtype=np.uint8),
        name="images",
        declared=declared("binary", mean=(0.5,) * 3, std=(0.2,) * 3),
    )
    assert data.train.features.dtype == torch.uint8 and data.mean == (0.5,) * 3 and data.num_outputs == 1


def test_a_class_absent_from_train_still_counts_when_declared() -> None:
    splits = arrays((4,), [0, 1, 1, 0])
    splits["test"] = (splits["test"][0], np.array([0, 1, 4, 0]))  # class 4 appears only in test
    data = to_data_splits(splits, name="toy", declared=declared("multiclass", num_classes=6))
    assert data.num_outputs == 6
    undeclared = to_data_splits(splits, name="toy", declared=declared("multiclass"))
    assert undeclared.num_outputs == 5  # counted over every split, not train alone


def test_text_labels_follow_class_names_or_sorted_order() -> None:
    splits = {name: (np.zeros((3, 2)), np.array(["cat", "dog", "cat"])) for name in ("train", "val", "test")}
    assert to_data_splits(splits, name="pets", declared=declared("multiclass")).class_names == ("cat", "dog")
    ordered = to_data_splits(splits, name="pets", declared=declared("multiclass", class_names=("dog", "cat", "bird")))
    assert ordered.train.targets.tolist() == [1, 0, 1] and ordered.num_outputs == 3


class Squares(Dataset):
    """A per-split torch Dataset with the `targets` attribute the contract asks for."""

    def __init__(self, size: int, with_targets: bool = True) -> None:
        self.size = size
        if with_targets:
            self.targets = np.arange(size) % 2

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((1, 2, 2), float(index)), index % 2


def test_a_torch_dataset_per_split_is_streamed_never_read_whole() -> None:
    reads: list[int] = []

    class Counted(Squares):
        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            reads.append(index)
            return super().__getitem__(index)

    data = to_data_splits(
        {name: Counted(6) for name in ("train", "val", "test")}, name="sq", declared=declared("binary")
    )
    assert isinstance(data.train, StreamedSplit) and data.input_shape == (1, 2, 2) and data.train.dtype == torch.float32
    assert len(reads) <= 3  # one sample per split, for its shape and dtype
    loader = make_loader(data.train, batch_size=4, shuffle=False, seed=0)
    features, targets = next(iter(loader))
    assert features.shape == (4, 1, 2, 2) and targets.dtype == torch.int64 and targets.tolist() == [0, 1, 0, 1]
    assert features[3].unique().tolist() == [3.0]
    before = len(reads)
    assert split_fingerprint(data.test) == split_fingerprint(data.test)
    assert len(reads) == before  # the digest decodes no sample
    with pytest.raises(
        DatasetContractError, match=r"train split: a torch.utils.data.Dataset needs a `targets` attribute"
    ):
        to_data_splits(
            {name: Squares(4, with_targets=False) for name in ("train", "val", "test")},
            name="sq",
            declared=declared("binary"),
        )


class Module(L.LightningDataModule):
    def setup(self, stage: str) -> None:
        self.parts = {name: Squares(4) for name in ("train", "val", "test")}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.parts["train"])

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.parts["val"])

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.parts["test"])


def test_a_lightning_datamodule_gives_its_three_datasets() -> None:
    data = to_data_splits(Module(), name="dm", declared=declared("binary"))
    assert len(data.train) == len(data.test) == 4


@pytest.mark.parametrize(
    ("result", "dataset", "message"),
    [
        ({"train": 1, "vall": 2, "test": 3}, declared("binary"), r"Did you mean 'val'"),
        (arrays((2,), [0, 1]), declared("multiclas"), r"declares task 'multiclas'\. Did you mean 'multiclass'"),
        (arrays((2,), [0, 1]), lambda *, seed: None, r"declares no task.*\.task = 'multiclass'"),
        ([1, 2, 3], declared("binary"), r"returned list; a dataset returns a mapping"),
        (
            {name: (np.zeros((2, 2)), np.array([0.5, 1])) for name in ("train", "val", "test")},
            declared("multiclass"),
            r"int64",
        ),
    ],
)
def test_what_cannot_be_read_is_explained(result: Any, dataset: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_data_splits(result, name="toy", declared=dataset)
