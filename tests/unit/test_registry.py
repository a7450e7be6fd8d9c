"""The entry-point registry: discovery without import, lazy loading, conflicts, errors that teach."""

from __future__ import annotations

import fnmatch
import sys

import pytest
from helpers import ScaledL1, own_loss_names, own_miner_names
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
    assert info.target == "lossforge.losses.classification:FocalLoss"


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
