"""The package: names, the provider's answer, what is not offered and why, and what listing costs."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import metadata

import pytest
from lossforge import build_loss, list_losses
from lossforge.registry import LOSSES, MINERS, RegistryError
from pytorch_metric_learning import losses, miners

import lossforge_pml
from lossforge_pml import adapters, provider
from lossforge_pml.table import COMPOUND_WORDS, NOT_ADAPTED, SPECS, UNFIT, registry_name


@pytest.mark.parametrize(
    ("class_name", "name"),
    [
        ("ArcFaceLoss", "pml_arcface_loss"),  # the examples
        ("MultiSimilarityMiner", "pml_multi_similarity_miner"),
        ("TripletMarginLoss", "pml_triplet_margin_loss"),
        ("CosFaceLoss", "pml_cosface_loss"),
        ("SphereFaceLoss", "pml_sphereface_loss"),
        ("SubCenterArcFaceLoss", "pml_sub_center_arcface_loss"),
        ("SupConLoss", "pml_supcon_loss"),
        ("NTXentLoss", "pml_ntxent_loss"),
        ("ProxyNCALoss", "pml_proxy_nca_loss"),
        ("NCALoss", "pml_nca_loss"),
        ("FastAPLoss", "pml_fast_ap_loss"),
        ("P2SGradLoss", "pml_p2s_grad_loss"),
        ("HDCMiner", "pml_hdc_miner"),
        ("SignalToNoiseRatioContrastiveLoss", "pml_signal_to_noise_ratio_contrastive_loss"),
    ],
)
def test_registry_names_keep_compound_words_whole(class_name: str, name: str) -> None:
    assert registry_name(class_name) == name


def test_every_compound_word_is_used_and_names_are_unique() -> None:
    everything = [*SPECS, *NOT_ADAPTED]
    assert all(any(word in class_name for class_name in everything) for word in COMPOUND_WORDS)
    assert len({registry_name(class_name) for class_name in everything}) == len(everything)


def test_every_class_the_installed_pml_exports_is_adapted_or_left_out_with_a_reason() -> None:
    # A new PML release that adds a loss fails here until the table says what to do with it.
    exported = {name for module in (losses, miners) for name, value in vars(module).items() if inspect.isclass(value)}
    assert exported == set(SPECS) | set(NOT_ADAPTED)
    assert not set(SPECS) & set(NOT_ADAPTED)
    assert all(reason for reason in NOT_ADAPTED.values())


def test_the_provider_declares_every_fitting_component_and_says_why_of_the_rest() -> None:
    answer = provider.provide()
    declared = {**answer["lossforge.losses"], **answer["lossforge.miners"]}
    assert set(declared) | set(answer["unavailable"]) == {registry_name(name) for name in [*SPECS, *NOT_ADAPTED]}
    assert all(target == f"lossforge_pml.generated:{name}" for name, target in declared.items())
    for name, reason in UNFIT.items():
        assert reason in answer["unavailable"][name]


def test_a_name_the_installed_pml_lacks_says_which_version_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider, "installed_pml", lambda: "2.5.0")
    LOSSES.refresh()
    try:
        assert "pml_smooth_ap_loss" not in list_losses() and "pml_arcface_loss" in list_losses()
        with pytest.raises(RegistryError) as error:
            build_loss("pml_smooth_ap_loss")
        message = str(error.value)
        assert "pytorch-metric-learning 2.5.0 does not have (it arrived in 2.9)" in message
        assert "pip install -U 'pytorch-metric-learning>=2.9'" in message and "lossforge-pml==0.1.0" in message
    finally:
        monkeypatch.undo()
        LOSSES.refresh()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pml_dynamic_soft_margin_loss", "does not fit lossforge's contract: check_trains"),
        ("pml_cross_batch_memory", "is not adapted by lossforge-pml: wraps another loss"),
        ("pml_vicreg_loss", "self-supervised"),
    ],
)
def test_a_component_that_is_not_offered_says_why(name: str, expected: str) -> None:
    with pytest.raises(RegistryError, match=expected):
        build_loss(name)


def test_without_pml_a_component_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_metric_learning", None)  # as if it were not installed
    monkeypatch.setattr(adapters, "_GENERATED", {})
    LOSSES.refresh()
    try:
        with pytest.raises(RegistryError) as error:
            build_loss("pml_arcface_loss")
        message = str(error.value)
        assert "pml_arcface_loss adapts pytorch_metric_learning.losses.ArcFaceLoss" in message
        assert "pip install 'pytorch-metric-learning>=2.5'" in message and "lossforge-pml==0.1.0" in message
    finally:
        monkeypatch.undo()
        LOSSES.refresh()


def test_provenance_is_the_plugins_distribution() -> None:
    info = MINERS.info("pml_multi_similarity_miner")
    assert (info.distribution, info.version) == ("lossforge-pml", lossforge_pml.__version__)
    assert info.via == "pml = lossforge_pml.provider:provide"


def test_it_depends_on_pml_and_torch_only_and_never_imports_lossforge() -> None:
    requirements = [r for r in metadata.requires("lossforge-pml") or [] if "extra ==" not in r]
    assert sorted(requirements) == ["pytorch-metric-learning>=2.5", "torch>=2.2"]
    for module in ("adapters", "generated", "provider", "table"):
        source = inspect.getsource(__import__(f"lossforge_pml.{module}", fromlist=["_"]))
        assert (
            "import lossforge\n" not in source and "from lossforge." not in source and "from lossforge " not in source
        )


def test_listing_every_name_imports_neither_torch_nor_pml() -> None:
    code = (
        "import sys, lossforge; names = lossforge.list_losses('pml_*') + lossforge.list_miners('pml_*'); "
        "assert len(names) == 40, names; "
        "assert not {'torch', 'pytorch_metric_learning'} & set(sys.modules), 'imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
