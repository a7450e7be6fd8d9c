"""Every generated PML component against lossforge's contract kit, through lossforge's own registry; the
components listed as unfit (``lossforge_pml.table.UNFIT``) fail exactly the check their reason names."""

from __future__ import annotations

import pytest
from lossforge.testing import Check, check_loss, check_miner, loss_checks, loss_names, miner_names, parametrize_checks

from lossforge_pml.adapters import make_component
from lossforge_pml.table import UNFIT, components

DISTRIBUTION = "lossforge-pml"


def expected(kind: str) -> list[str]:
    return sorted(name for name, (_, spec) in components().items() if spec.kind == kind and name not in UNFIT)


def test_every_fitting_component_is_registered() -> None:
    # Guards the parametrized test below: an empty list would pass it silently. The installed PML (2.9) has
    # every adapted class, so every fitting one is registered.
    assert loss_names(distribution=DISTRIBUTION) == expected("loss")
    assert miner_names(distribution=DISTRIBUTION) == expected("miner")
    assert {"pml_arcface_loss", "pml_triplet_margin_loss"} <= set(expected("loss"))
    assert "pml_multi_similarity_miner" in expected("miner")
    assert len(expected("loss")) == 31 and len(expected("miner")) == 9


@parametrize_checks(distribution=DISTRIBUTION)
def test_contract(check: Check) -> None:  # one test id per component and promise
    check()


def _broken(check: Check) -> bool:
    try:
        check()
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("name", sorted(UNFIT))
def test_an_unfit_component_fails_exactly_the_check_its_reason_names(name: str) -> None:
    named = UNFIT[name].split(":")[0]
    assert [check.name for check in loss_checks(make_component(name)) if _broken(check)] == [named]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("pml_triplet_margin_loss", {"distance": "cosine", "swap": True, "smooth_loss": True}),
        ("pml_contrastive_loss", {"distance": "dot", "pos_margin": 0.5, "neg_margin": 0.1}),
        ("pml_multi_similarity_loss", {"alpha": 10.0, "beta": 10.0}),
        ("pml_arcface_loss", {"margin": 10.0, "scale": 8.0}),
    ],
)
def test_non_default_configurations(name: str, params: dict) -> None:
    check_loss(name, params=params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("pml_triplet_margin_miner", {"type_of_triplets": "semihard", "margin": 0.5}),
        ("pml_batch_easy_hard_miner", {"pos_strategy": "hard", "neg_strategy": "hard"}),
        ("pml_pair_margin_miner", {"distance": "cosine"}),
    ],
)
def test_non_default_miner_configurations(name: str, params: dict) -> None:
    check_miner(name, params=params)
