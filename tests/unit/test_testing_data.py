"""Tests for the dataset and model contract kit (lossforge.testing): each check passes lossforge's own
components and catches the broken promise it names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from torch import Tensor, nn

from lossforge.testing import check_dataset, check_model, dataset_checks, model_checks


def splits(labels: dict[str, list[int]]) -> dict[str, Any]:
    return {
        name: (np.ones((len(values), 2)) * np.arange(len(values))[:, None], np.array(values))
        for name, values in labels.items()
    }


def test_lossforge_models_and_datasets_pass() -> None:
    for name, params in (("mlp", {"hidden": [16]}), ("cnn", {"channels": [4]}), ("resnet", {"width": 2})):
        check_model(name, params=params)
    check_dataset("digits_binary")
    assert [check.name for check in dataset_checks("digits")] == [
        "check_dataset_declaration",
        "check_dataset_splits",
        "check_dataset_classes",
        "check_dataset_reproducible",
    ]


def test_a_label_beyond_the_declared_classes_is_caught() -> None:
    def leaky(*, seed: int) -> dict[str, Any]:
        return splits({"train": [0, 1, 0, 1], "val": [0, 1], "test": [0, 2]})

    leaky.task, leaky.num_classes = "multiclass", 2  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match=r"multiclass targets must be class indices in \[0, 2\)"):
        check_dataset(leaky)


def test_an_unreproducible_split_and_a_class_disjoint_lie_are_caught() -> None:
    draws = iter(range(100))

    def moving(*, seed: int) -> dict[str, Any]:
        shift = next(draws)
        return {
            name: (features + shift, labels)
            for name, (features, labels) in splits({"train": [0, 1], "val": [0, 1], "test": [0, 1]}).items()
        }

    moving.task = "binary"  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match=r"split seed 0 gave a different train split"):
        check_dataset(moving)

    def disjoint(*, seed: int) -> dict[str, Any]:
        return {**splits({"train": [0, 1], "val": [0, 1], "test": [1, 2]}), "classes_disjoint": True}

    disjoint.task = "multiclass"  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match=r"class-disjoint splits, but train and test share \[1\]"):
        check_dataset(disjoint)


class WrongWidth(nn.Module):
    def __init__(self, *, input_shape: tuple[int, ...], output_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(input_shape[-1], output_dim + 1)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(features)


class UsesAReservedKey(WrongWidth):
    def __init__(self, *, input_shape: tuple[int, ...], output_dim: int, weights: str = "") -> None:
        super().__init__(input_shape=input_shape, output_dim=output_dim)


class Frozen(nn.Module):
    def __init__(self, *, input_shape: tuple[int, ...], output_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(input_shape[-1], output_dim)
        self.unused = nn.Linear(2, 2)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(features)


@pytest.mark.parametrize(
    ("model", "check", "message"),
    [
        (WrongWidth, "check_model_shapes", r"with output_dim=1 gave \(4, 3, 16, 2\), expected \(4, 1\)"),
        (UsesAReservedKey, "check_model_constructor", r"`weights` is a key lossforge reserves"),
        (Frozen, "check_model_trains", r"parameter unused\.weight got no finite gradient"),
        (nn.Linear, "check_model_constructor", r"must take the keyword-only constructor parameters input_shape"),
    ],
)
def test_a_broken_model_promise_is_named(model: type[nn.Module], check: str, message: str) -> None:
    (selected,) = [item for item in model_checks(model) if item.name == check]
    with pytest.raises(AssertionError, match=message):
        selected()
