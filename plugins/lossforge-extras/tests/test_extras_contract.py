"""Every loss and miner of this plugin against lossforge's contract, through lossforge's own registry."""

from __future__ import annotations

import pytest
from lossforge.testing import Check, check_loss, check_miner, loss_names, miner_names, parametrize_checks

DISTRIBUTION = "lossforge-extras"


def test_every_component_is_registered() -> None:
    # Guards the parametrized tests below: an empty list would pass them silently.
    expected = ["asymmetric", "info_nce", "multi_similarity", "poly1_cross_entropy"]
    assert loss_names(distribution=DISTRIBUTION) == expected
    assert miner_names(distribution=DISTRIBUTION) == ["multi_similarity"]


@parametrize_checks(distribution=DISTRIBUTION)
def test_contract(check: Check) -> None:  # one test id per component and promise
    check()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("poly1_cross_entropy", {"epsilon": -1.0}),
        ("poly1_cross_entropy", {"epsilon": 0.0}),
        ("asymmetric", {"gamma_positive": 0.5, "gamma_negative": 0.5, "clip": 0.2}),
        ("asymmetric", {"gamma_positive": 1.0, "gamma_negative": 0.0, "clip": 0.0}),
        ("multi_similarity", {"alpha": 0.5, "beta": 5.0, "base": -0.2}),
        ("info_nce", {"temperature": 1.0}),
    ],
)
def test_non_default_configurations(name: str, params: dict) -> None:
    check_loss(name, params=params)


def test_miner_with_a_large_margin() -> None:
    check_miner("multi_similarity", params={"epsilon": 5.0})
