"""This plugin's dataset and model against lossforge's dataset and model contract, through lossforge's registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lossforge.testing import Check, dataset_checks, dataset_names, model_checks, model_names

from lossforge_extras.datasets import spirals
from lossforge_extras.models import ResidualMLP

DISTRIBUTION = "lossforge-extras"
CHECKS = [*dataset_checks("spirals"), *dataset_checks("spirals", params={"classes": 5}), *model_checks("residual_mlp")]


def test_the_dataset_and_the_model_are_registered() -> None:
    assert dataset_names(distribution=DISTRIBUTION) == ["spirals"]
    assert model_names(distribution=DISTRIBUTION) == ["residual_mlp"]


@pytest.mark.parametrize("check", CHECKS, ids=[check.id for check in CHECKS])
def test_contract(check: Check) -> None:
    check()


def test_spirals_are_stratified_reproducible_and_vary_with_the_split_seed() -> None:
    first, again, other = spirals(seed=0, per_class=40), spirals(seed=0, per_class=40), spirals(seed=1, per_class=40)
    for name, (features, labels) in first.items():
        assert features.dtype == np.float64 and np.array_equal(features, again[name][0])
        assert np.bincount(labels).tolist() == [np.bincount(labels)[0]] * 3  # every class equally in every split
    assert not np.array_equal(first["test"][0], other["test"][0])
    with pytest.raises(ValueError, match="classes >= 2"):
        spirals(seed=0, classes=1)


def test_the_residual_mlp_maps_any_sample_shape() -> None:
    assert ResidualMLP(input_shape=(1, 4, 4), output_dim=2, width=8, blocks=1)(torch.zeros(3, 1, 4, 4)).shape == (3, 2)
