"""Third-party plugins as real distributions, in-process: discovery survives broken ones, errors name the
package and the entry point, the environment switches work, plugin config folders join Hydra's search
path, and the example plugin (plugins/lossforge-extras) is listed with its provider. The same through the
real command line: ``tests/e2e/test_plugin_runs.py``.

Each fake plugin is installed into the ``site`` fixture (``conftest.py``, :class:`helpers.Site`).
"""

from __future__ import annotations

import sys

import pytest
from helpers import (
    EXTRAS,
    EXTRAS_VERSION,
    GOOD_LOSS,
    Site,
    compose_config,
    install_good,
    needs_extras,
    own_loss_names,
    own_miner_names,
    refresh_registries,
)
from hydra.core.config_search_path import ConfigSearchPath
from hydra.errors import ConfigCompositionException

import lossforge
from hydra_plugins.lossforge_searchpath.lossforge_searchpath import LossforgeSearchPathPlugin, plugin_config_options
from lossforge.commands.list import main as list_components
from lossforge.registry import LOSSES, MINERS, RegistryError

BROKEN_COMPONENTS = """
    from torch import nn


    def not_a_module():
        return None


    class NoTasks(nn.Module):
        pass


    class UnknownTask(nn.Module):
        tasks = ("ranking",)


    class NoTupleKind(nn.Module):
        def forward(self, embeddings, labels):
            return ()
"""


# -- discovery survives broken plugins -------------------------------------------------------------


def test_a_plugin_whose_import_raises_is_reported_and_the_rest_keep_working(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    install_good(site)
    site.install(
        "lf-test-broken",
        package="lf_test_broken",
        files={"__init__.py": "raise RuntimeError('the plugin is broken')", "losses.py": ""},
        entry_points={"lossforge.losses": {"broken_loss": "lf_test_broken.losses:Loss"}},
    )
    assert {"broken_loss", "scaled_l1", "l1"} <= set(lossforge.list_losses())  # listing imports nothing
    assert "lf_test_broken" not in sys.modules
    assert lossforge.build_loss("l1") is not None and lossforge.build_loss("scaled_l1", scale=2.0).scale == 2.0

    with pytest.raises(RegistryError) as error:
        lossforge.build_loss("broken_loss")
    message = str(error.value)
    for expected in (
        "lf-test-broken==0.1.0",
        "'broken_loss = lf_test_broken.losses:Loss'",
        "'lossforge.losses'",
        "RuntimeError: the plugin is broken",
    ):
        assert expected in message

    assert list_components() == 1
    out = capsys.readouterr().out
    assert "broken_loss" in out and "FAILED" in out and "RuntimeError: the plugin is broken" in out
    assert "lf_test_broken.losses:Loss" in out
    for line in out.splitlines():
        if line.strip().startswith(("scaled_l1", "l1 ")):
            assert "FAILED" not in line
    assert any("scaled_l1" in line and "lf-test-good==0.1.0" in line for line in out.splitlines())


def test_an_entry_point_naming_a_missing_attribute(site: Site) -> None:
    site.install(
        "lf-test-missing",
        package="lf_test_missing",
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {"ghost": "lf_test_missing.losses:DoesNotExist"}},
    )
    with pytest.raises(RegistryError) as error:
        lossforge.build_loss("ghost")
    message = str(error.value)
    assert "lf-test-missing==0.1.0" in message and "'ghost = lf_test_missing.losses:DoesNotExist'" in message
    assert "AttributeError" in message and "DoesNotExist" in message
    assert lossforge.build_loss("huber", delta=0.5).delta == 0.5
    failures = LOSSES.load_all()  # other plugins installed on this machine are not ours to judge
    assert failures["ghost"] == LOSSES.info("ghost").error and not failures.keys() & set(own_loss_names())


@pytest.mark.parametrize(
    ("group", "target", "wrong"),
    [
        ("lossforge.losses", "not_a_module", "must be a torch.nn.Module subclass"),
        ("lossforge.losses", "NoTasks", "must declare a class attribute `tasks`"),
        ("lossforge.losses", "UnknownTask", "must declare a class attribute `tasks`, a non-empty tuple drawn from"),
        ("lossforge.miners", "NoTupleKind", "must declare a class attribute `tuple_kind` = 'pair' or 'triplet'"),
        ("lossforge.miners", "not_a_module", "must be a torch.nn.Module subclass"),
    ],
)
def test_a_component_breaking_the_contract_is_refused_with_the_reason(
    site: Site, group: str, target: str, wrong: str
) -> None:
    site.install(
        "lf-test-contract",
        package="lf_test_contract",
        files={"components.py": BROKEN_COMPONENTS},
        entry_points={group: {"bad": f"lf_test_contract.components:{target}"}},
    )
    registry, build, own_names = (
        (LOSSES, lossforge.build_loss, own_loss_names)
        if group == "lossforge.losses"
        else (MINERS, lossforge.build_miner, own_miner_names)
    )
    with pytest.raises(RegistryError) as error:
        build("bad")
    message = str(error.value)
    assert "lf-test-contract==0.1.0" in message and f"'bad = lf_test_contract.components:{target}'" in message
    assert "ContractError" in message and wrong in message  # lossforge.contract.ContractError, a TypeError
    failures = registry.load_all()
    assert failures["bad"] == registry.info("bad").error and not failures.keys() & set(own_names())  # ours load


def test_two_packages_exporting_one_name_are_both_named_and_neither_wins(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    install_good(site, "lf-test-a", "lf_test_a")
    site.install(
        "lf-test-b",
        package="lf_test_b",
        version="2.0",
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {"scaled_l1": "lf_test_b.losses:ScaledL1"}},
    )
    with pytest.raises(RegistryError) as error:
        lossforge.build_loss("scaled_l1")
    message = str(error.value)
    assert "more than one package" in message
    assert "'lf-test-a:scaled_l1' (lf-test-a==0.1.0, entry point lf_test_a.losses:ScaledL1)" in message
    assert "'lf-test-b:scaled_l1' (lf-test-b==2.0" in message
    assert type(lossforge.build_loss("lf-test-b:scaled_l1")).__module__ == "lf_test_b.losses"
    assert sorted(LOSSES.conflicts()["scaled_l1"]) == ["lf-test-a==0.1.0", "lf-test-b==2.0"]
    assert lossforge.build_loss("l1") is not None

    list_components()
    out = capsys.readouterr().out
    (conflict,) = [line for line in out.splitlines() if "'scaled_l1' is registered by several packages" in line]
    assert "lf-test-a==0.1.0" in conflict and "lf-test-b==2.0" in conflict
    assert "lf-test-a:scaled_l1" in out and "lf-test-b:scaled_l1" in out


def test_a_plugin_reusing_a_builtin_name_makes_the_bare_name_ambiguous(site: Site) -> None:
    site.install(
        "lf-test-shadow",
        package="lf_test_shadow",
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {"l1": "lf_test_shadow.losses:ScaledL1"}},
    )
    with pytest.raises(RegistryError, match="more than one package") as error:
        lossforge.build_loss("l1")
    assert "'lossforge:l1' (lossforge==" in str(error.value) and "'lf-test-shadow:l1'" in str(error.value)
    assert type(lossforge.build_loss("lossforge:l1")).__module__ == "lossforge.losses.regression.classic"


# -- environment switches --------------------------------------------------------------------------


def test_disable_plugins_keeps_only_lossforge_own(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(site)
    assert "scaled_l1" in lossforge.list_losses()
    monkeypatch.setenv("LOSSFORGE_DISABLE_PLUGINS", "1")
    refresh_registries()
    names = lossforge.list_losses() + lossforge.list_miners()
    assert "scaled_l1" not in names and "l1" in names and "hard_pairs" in names
    assert {LOSSES.info(name).distribution for name in lossforge.list_losses()} == {"lossforge"}
    with pytest.raises(RegistryError, match="Unknown loss 'scaled_l1'"):
        lossforge.build_loss("scaled_l1")


@pytest.mark.parametrize("spelling", ["lf-test-good", "LF_Test.Good", " lf-test-other , lf_test_good "])
def test_block_plugins_hides_the_named_packages(site: Site, monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    install_good(site)
    install_good(site, "lf-test-kept", "lf_test_kept")  # the same name twice: a conflict until one is blocked
    assert "scaled_l1" not in lossforge.list_losses()
    monkeypatch.setenv("LOSSFORGE_BLOCK_PLUGINS", spelling)
    refresh_registries()
    assert LOSSES.info("scaled_l1").distribution == "lf-test-kept" and "scaled_l1" not in LOSSES.conflicts()


def test_blocking_a_broken_plugin_makes_list_succeed(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install(
        "lf-test-broken",
        package="lf_test_broken",
        files={"__init__.py": "raise ImportError('a dependency is missing')"},
        entry_points={"lossforge.losses": {"broken_loss": "lf_test_broken:Loss"}},
    )
    monkeypatch.setenv("LOSSFORGE_BLOCK_PLUGINS", "lf-test-broken")
    refresh_registries()
    list_components()
    assert "broken_loss" not in capsys.readouterr().out


# -- plugin config folders on Hydra's search path --------------------------------------------------


def install_configs(site: Site, files: dict[str, str], *, distribution: str = "lf-test-conf") -> None:
    package = distribution.replace("-", "_")
    site.install(
        distribution,
        package=package,
        files={"conf/__init__.py": "", **{f"conf/{path}": text for path, text in files.items()}},
        entry_points={"lossforge.configs": {package: f"{package}.conf"}},
    )


HUBER_PRESET = """
    defaults:
      - huber
      - _self_

    delta: 0.25
"""


def test_a_plugin_config_folder_joins_the_search_path(site: Site) -> None:
    install_configs(site, {"loss/lf_test_preset.yaml": HUBER_PRESET})
    cfg = compose_config("loss=lf_test_preset")
    assert cfg.loss.name == "huber" and cfg.loss.delta == 0.25
    assert compose_config("loss=lf_test_preset", "loss.delta=2").loss.delta == 2.0
    with pytest.raises(ConfigCompositionException):  # still the generated node's types
        compose_config("loss=lf_test_preset", "loss.delta=abc")


@pytest.mark.parametrize(
    ("variable", "value"), [("LOSSFORGE_DISABLE_PLUGINS", "1"), ("LOSSFORGE_BLOCK_PLUGINS", "lf_test_conf")]
)
def test_switched_off_plugins_add_no_configs(
    site: Site, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    install_configs(site, {"loss/lf_test_preset.yaml": HUBER_PRESET})
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigCompositionException, match="lf_test_preset"):
        compose_config("loss=lf_test_preset")


def test_a_plugin_yaml_named_like_a_component_wins_over_the_generated_node(site: Site) -> None:
    # Plugin folders come before `structured://` in the search path, so loss/huber.yaml is found first;
    # Hydra 1.3 then merges it onto the generated node of the same name (deprecated "automatic schema
    # matching", with a warning): its values become the defaults and the types still hold.
    install_configs(site, {"loss/huber.yaml": "delta: 0.5\n"})
    with pytest.warns(UserWarning, match="validated against ConfigStore schema with the same name"):
        cfg = compose_config("loss=huber")
    assert cfg.loss.name == "huber" and cfg.loss.delta == 0.5 and cfg.loss.reduction == "mean"
    with pytest.raises(ConfigCompositionException):
        compose_config("loss=huber", "loss.delta=abc")


def test_lossforge_own_yaml_files_come_before_any_plugin(site: Site) -> None:
    install_configs(site, {"dataset/digits.yaml": "name: digits\nval_fraction: 0.5\ntest_fraction: 0.1\n"})
    assert compose_config().dataset.val_fraction != 0.5


def test_a_broken_config_package_is_skipped_with_a_warning(site: Site) -> None:
    site.install(
        "lf-test-badconf",
        package="lf_test_badconf",
        files={"__init__.py": "raise RuntimeError('broken on import')", "conf/__init__.py": ""},
        entry_points={"lossforge.configs": {"lf_test_badconf": "lf_test_badconf.conf"}},
    )
    install_configs(site, {"loss/lf_test_preset.yaml": HUBER_PRESET})
    expected = r"lf-test-badconf \(entry point 'lf_test_badconf = lf_test_badconf.conf'.*RuntimeError: broken on import"
    with pytest.warns(UserWarning, match=expected):
        cfg = compose_config("loss=lf_test_preset")
    assert cfg.loss.delta == 0.25  # the other plugin's configs still compose


def test_other_hydra_apps_are_left_alone(site: Site) -> None:
    install_configs(site, {"loss/lf_test_preset.yaml": HUBER_PRESET})
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

    search_path: ConfigSearchPath = ConfigSearchPathImpl()
    search_path.append("main", "pkg://some_other_app.conf")
    LossforgeSearchPathPlugin().manipulate_search_path(search_path)
    assert [element.path for element in search_path.get_path()] == ["pkg://some_other_app.conf"]


# -- the example plugin, installed -----------------------------------------------------------------


@needs_extras
def test_example_plugin_components_are_listed_with_their_provider() -> None:
    refresh_registries()
    for name in ("poly1_cross_entropy", "asymmetric", "multi_similarity", "info_nce"):
        assert lossforge.loss_info(name).provider == f"{EXTRAS}=={EXTRAS_VERSION}"
    assert lossforge.miner_info("multi_similarity").provider == f"{EXTRAS}=={EXTRAS_VERSION}"


@needs_extras
def test_example_plugin_presets_and_experiments_compose() -> None:
    refresh_registries()
    cfg = compose_config("loss=poly1_imagenet")
    assert cfg.loss.name == "poly1_cross_entropy" and cfg.loss.epsilon == 2.0
    cfg = compose_config("experiment=extras_asymmetric_multilabel")
    assert cfg.loss.name == "asymmetric" and cfg.dataset.name == "digits_multilabel"


def test_plugin_config_options_lists_their_yaml_files(site: Site) -> None:
    install_configs(site, {"loss/lf_test_preset.yaml": HUBER_PRESET, "experiment/lf_test_run.yaml": "seed: 1\n"})
    assert "lf_test_preset" in plugin_config_options("loss")
    assert "lf_test_run" in plugin_config_options("experiment")
    assert "lf_test_preset" not in plugin_config_options("miner")
