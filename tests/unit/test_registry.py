"""The entry-point registry: discovery without import, lazy loading, conflicts, errors that teach."""

from __future__ import annotations

import fnmatch
import sys

import pytest
from helpers import GOOD_LOSS, ScaledL1, Site, install_good, own_loss_names, own_miner_names, refresh_registries
from torch import nn

import lossforge
from lossforge import registry as registry_module
from lossforge.registry import Registry, RegistryError


class NoTasks(nn.Module):
    pass


def not_a_module() -> None:
    pass


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    here = __name__
    entries = [
        ("good", "helpers:ScaledL1", "pkg-a", "1.0"),
        ("shared", "helpers:ScaledL1", "pkg-a", "1.0"),
        ("shared", "helpers:ScaledL1", "pkg-b", "2.0"),
        ("broken_import", "module_that_does_not_exist_xyz:Loss", "pkg-c", "0.1"),
        ("missing_attribute", f"{here}:DoesNotExist", "pkg-c", "0.1"),
        ("no_tasks", f"{here}:NoTasks", "pkg-d", "0.3"),
        ("function", f"{here}:not_a_module", "pkg-d", "0.3"),
    ]
    monkeypatch.setattr(registry_module, "discover", lambda group: entries)
    return Registry("loss", "lossforge.losses")


def test_builtins_are_listed_sorted_and_filtered() -> None:
    names = lossforge.list_losses()
    assert names == sorted(names)
    for expected in ("l1", "l2", "huber", "hinge", "cross_entropy", "focal", "bce", "triplet"):
        assert expected in names
    # Exact lists of our own components; other plugins installed here may add names to any listing.
    assert own_loss_names("*hinge") == ["hinge", "multiclass_hinge"]
    assert {"cross_entropy", "weighted_cross_entropy"} <= set(own_loss_names("*entropy*"))
    assert own_miner_names("*triplets") == ["all_triplets", "hard_triplets", "semihard_triplets"]
    for listing, pattern in ((lossforge.list_losses, "*hinge"), (lossforge.list_miners, "*triplets")):
        listed = listing(pattern)
        assert listed == sorted(listed) and all(fnmatch.fnmatchcase(name, pattern) for name in listed)


def test_builtins_come_from_lossforge_entry_points() -> None:
    info = lossforge.loss_info("focal")
    assert info.distribution == "lossforge" and info.version == lossforge.__version__
    assert info.target.startswith("lossforge.losses.classification") and info.target.endswith(":FocalLoss")


def test_listing_names_imports_no_plugin(fake_registry: Registry) -> None:
    assert "good" in fake_registry.names()
    assert "module_that_does_not_exist_xyz" not in sys.modules
    assert fake_registry.info("good").loaded is None  # loaded on first use only
    assert isinstance(fake_registry.build("good", scale=2.0), ScaledL1)


def test_unknown_name_suggests_close_matches_and_says_where_plugins_come_from(
    fake_registry: Registry,
) -> None:
    with pytest.raises(RegistryError) as error:
        fake_registry.info("goood")
    message = str(error.value)
    assert "Did you mean 'good'" in message and "Available losses:" in message and "entry points" in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken_import", "ModuleNotFoundError"),
        ("missing_attribute", "DoesNotExist"),
        ("no_tasks", "`tasks`"),
        ("function", "torch.nn.Module subclass"),
    ],
)
def test_a_broken_plugin_is_reported_with_its_package_and_the_rest_keep_working(
    fake_registry: Registry, name: str, expected: str
) -> None:
    with pytest.raises(RegistryError) as error:
        fake_registry.load(name)
    assert "pkg-" in str(error.value) and expected in str(error.value)
    assert fake_registry.build("good").scale == 1.0
    assert name in fake_registry.load_all()


def test_duplicate_names_are_never_resolved_by_install_order(fake_registry: Registry) -> None:
    assert fake_registry.conflicts() == {"shared": ["pkg-a==1.0", "pkg-b==2.0"]}
    with pytest.raises(RegistryError, match="more than one package") as error:
        fake_registry.info("shared")
    assert "pkg-a:shared" in str(error.value) and "pkg-b:shared" in str(error.value)
    assert fake_registry.info("pkg-b:shared").version == "2.0"


def test_unknown_parameter_names_the_accepted_ones(fake_registry: Registry) -> None:
    with pytest.raises(RegistryError, match=r"no parameter 'scal'\. Did you mean 'scale'"):
        fake_registry.build("good", scal=2.0)


def test_parameters_come_from_the_constructor(fake_registry: Registry) -> None:
    parameters = fake_registry.parameters("good")
    assert list(parameters) == ["scale", "reduction"]
    assert parameters["scale"].default == 1.0 and parameters["scale"].annotation is float


def test_environment_switches_disable_and_block_plugins(
    fake_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSFORGE_BLOCK_PLUGINS", "pkg_b, pkg-c")
    fake_registry.refresh()
    assert "shared" in fake_registry.names() and "broken_import" not in fake_registry.names()
    monkeypatch.setenv("LOSSFORGE_DISABLE_PLUGINS", "1")
    fake_registry.refresh()
    assert fake_registry.names() == []  # none of these fakes is lossforge's own


def test_in_process_registration(fake_registry: Registry) -> None:
    fake_registry.register("local", ScaledL1)
    assert fake_registry.info("local").distribution == "__local__"
    with pytest.raises(RegistryError, match="already registered"):
        fake_registry.register("good", ScaledL1)
    with pytest.raises(TypeError, match="tasks"):
        fake_registry.register("bad", NoTasks)


# -- providers: one entry point, many components ------------------------------------------------------------
PROVIDER = """
def provide():
    return {
        "lossforge.losses": {
            "made_l1": "lf_test_provider.made:ScaledL1",
            "made_l1_too": "lf_test_provider.made:ScaledL1",
        },
        "lossforge.miners": {},
        "unavailable": {"made_later": "needs some-library >= 9 (installed: 1.0)"},
    }
"""


def install_provider(site: Site, *, provider: str = PROVIDER, distribution: str = "lf-test-provider") -> None:
    site.install(
        distribution,
        package="lf_test_provider",
        files={"provider.py": provider, "made.py": GOOD_LOSS},
        entry_points={"lossforge.providers": {"made": "lf_test_provider.provider:provide"}},
    )
    refresh_registries()


def test_a_provider_declares_many_components_loaded_on_first_use(site: Site) -> None:
    install_provider(site)
    assert {"made_l1", "made_l1_too"} <= set(lossforge.list_losses("made_*"))
    assert "lf_test_provider.made" not in sys.modules  # names known, nothing of the components imported
    info = lossforge.loss_info("made_l1")
    assert (info.distribution, info.version, info.target) == (
        "lf-test-provider",
        "0.1.0",
        "lf_test_provider.made:ScaledL1",
    )
    assert info.via == "made = lf_test_provider.provider:provide"
    loss = lossforge.build_loss("made_l1", scale=2.0)
    assert type(loss).__name__ == "ScaledL1" and loss.scale == 2.0


def test_a_name_a_provider_cannot_offer_here_says_why(site: Site) -> None:
    install_provider(site)
    with pytest.raises(RegistryError, match=r"declared by lf-test-provider==0\.1\.0 .*needs some-library >= 9"):
        lossforge.build_loss("made_later")
    assert "made_later" not in lossforge.list_losses()


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("raise ImportError('a dependency is missing')", "ImportError: a dependency is missing"),
        ("def provide():\n    return ['made_l1']", "a provider must return"),
        ("def provide():\n    return {'lossforge.losses': {'x': 'no_colon'}}", "'module:attribute' strings"),
        ("def provide():\n    return {'lossforge.lossez': {}}", "unknown keys ['lossforge.lossez']"),
    ],
)
def test_a_broken_provider_is_recorded_and_the_rest_keep_working(site: Site, provider: str, expected: str) -> None:
    install_provider(site, provider=provider)
    (failure,) = [f for f in lossforge.registry.LOSSES.provider_failures() if f.distribution == "lf-test-provider"]
    assert expected in failure.error and failure.entry_point == "made = lf_test_provider.provider:provide"
    assert failure.provider == "lf-test-provider==0.1.0"
    assert "l1" in lossforge.list_losses() and lossforge.build_loss("l1") is not None


def test_a_failed_load_names_the_provider_entry_point(site: Site) -> None:
    install_provider(site, provider=PROVIDER.replace("made:ScaledL1", "made:Missing"))
    with pytest.raises(RegistryError) as error:
        lossforge.build_loss("made_l1")
    message = str(error.value)
    assert (
        "lf-test-provider==0.1.0" in message
        and "provider entry point 'made = lf_test_provider.provider:provide'" in message
    )
    assert "Missing" in message


def test_provided_names_obey_the_conflict_rules(site: Site) -> None:
    install_provider(site)
    install_good(site, distribution="lf-test-rival", package="lf_test_rival")  # an entry point `scaled_l1`
    rival = PROVIDER.replace('"made_l1_too"', '"scaled_l1"')
    (site.root / "lf_test_provider" / "provider.py").write_text(rival)
    refresh_registries()
    assert lossforge.registry.LOSSES.conflicts()["scaled_l1"] == ["lf-test-rival==0.1.0", "lf-test-provider==0.1.0"]
    with pytest.raises(RegistryError, match="more than one package"):
        lossforge.loss_info("scaled_l1")
    assert lossforge.loss_info("lf-test-provider:scaled_l1").via is not None


def test_switches_apply_to_providers_which_are_then_not_imported(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    install_provider(site)
    monkeypatch.setenv("LOSSFORGE_BLOCK_PLUGINS", "LF_Test_Provider")
    refresh_registries()
    sys.modules.pop("lf_test_provider.provider", None)
    assert not lossforge.list_losses("made_*")
    assert "lf_test_provider.provider" not in sys.modules
    monkeypatch.delenv("LOSSFORGE_BLOCK_PLUGINS")
    monkeypatch.setenv("LOSSFORGE_DISABLE_PLUGINS", "1")
    refresh_registries()
    assert not lossforge.list_losses("made_*") and not lossforge.registry.LOSSES.provider_failures()


def test_datasets_and_models_are_lossforge_entry_points_like_losses() -> None:
    from lossforge.registry import DATASETS, MODELS

    assert {"csv", "digits", "mnist"} <= set(DATASETS.names()) and {"cnn", "mlp", "resnet"} <= set(MODELS.names())
    assert (DATASETS.info("digits").distribution, DATASETS.info("digits").target) == (
        "lossforge",
        "lossforge.data.digits:digits",
    )
    assert MODELS.info("resnet").target == "lossforge.models.resnet:ResNet"
    assert "seed" not in DATASETS.parameters("diabetes")  # lossforge passes the split seed itself
    assert not {"input_shape", "output_dim"} & set(MODELS.parameters("cnn"))
