"""Third-party plugins as real distributions: discovery survives broken ones, errors name the package and
the entry point, the environment switches work, plugin config folders join Hydra's search path, and the
example plugin (plugins/lossforge-extras) trains end to end.

Each fake plugin is a real distribution: a package and a ``<name>-<version>.dist-info`` folder (METADATA,
entry_points.txt) in a temporary folder put on ``sys.path``, which ``importlib.metadata`` finds exactly as
it finds a pip-installed one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from helpers import default_store_runs, run_lossforge, run_python
from hydra import compose, initialize_config_module
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig

import lossforge
from hydra_plugins.lossforge_searchpath.lossforge_searchpath import LossforgeSearchPathPlugin, plugin_config_options
from lossforge.cli import list_components
from lossforge.hydra_options import register_components
from lossforge.registry import LOSSES, MINERS, RegistryError

GOOD_LOSS = """
    import torch
    from torch import nn


    class ScaledL1(nn.Module):
        tasks = ("regression",)

        def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
            super().__init__()
            self.scale, self.reduction = scale, reduction

        def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return self.scale * (prediction - target).abs().mean()
"""

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


class Site:
    """A folder on ``sys.path`` into which tests 'install' distributions by writing their files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.packages: list[str] = []

    def install(
        self,
        distribution: str,
        *,
        package: str,
        files: dict[str, str],
        entry_points: dict[str, dict[str, str]],
        version: str = "0.1.0",
    ) -> None:
        """Write ``package`` (``files`` relative to it, e.g. ``{"__init__.py": "..."}``) and its metadata."""
        for relative, text in {"__init__.py": "", **files}.items():
            path = self.root / package / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        dist_info = self.root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
        (dist_info / "entry_points.txt").write_text(
            "".join(
                f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
                for group, entries in entry_points.items()
            )
        )
        self.packages.append(package)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    for variable in ("LOSSFORGE_DISABLE_PLUGINS", "LOSSFORGE_BLOCK_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    LOSSES.refresh()
    MINERS.refresh()
    fake = Site(root)
    yield fake
    LOSSES.refresh()
    MINERS.refresh()
    for name in list(sys.modules):
        if name.split(".")[0] in fake.packages:
            del sys.modules[name]


def refreshed() -> None:
    LOSSES.refresh()
    MINERS.refresh()


def install_good(site: Site, distribution: str = "lf-test-good", package: str = "lf_test_good") -> None:
    site.install(
        distribution,
        package=package,
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {"scaled_l1": f"{package}.losses:ScaledL1"}},
    )


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
    assert LOSSES.load_all() == {"ghost": LOSSES.info("ghost").error}


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
    registry, build = (LOSSES, lossforge.build_loss) if group == "lossforge.losses" else (MINERS, lossforge.build_miner)
    with pytest.raises(RegistryError) as error:
        build("bad")
    message = str(error.value)
    assert "lf-test-contract==0.1.0" in message and f"'bad = lf_test_contract.components:{target}'" in message
    assert "TypeError" in message and wrong in message
    assert registry.load_all() == {"bad": registry.info("bad").error}  # every other component still loads


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
    assert {name: sorted(providers) for name, providers in LOSSES.conflicts().items()} == {
        "scaled_l1": ["lf-test-a==0.1.0", "lf-test-b==2.0"]
    }
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
    assert type(lossforge.build_loss("lossforge:l1")).__module__ == "lossforge.losses.regression"


# -- environment switches --------------------------------------------------------------------------


def test_disable_plugins_keeps_only_lossforge_own(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(site)
    assert "scaled_l1" in lossforge.list_losses()
    monkeypatch.setenv("LOSSFORGE_DISABLE_PLUGINS", "1")
    refreshed()
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
    refreshed()
    assert LOSSES.info("scaled_l1").distribution == "lf-test-kept" and LOSSES.conflicts() == {}


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
    refreshed()
    list_components()
    assert "broken_loss" not in capsys.readouterr().out


# -- the real command line -------------------------------------------------------------------------


def run_with_path(cwd: Path, *arguments: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python <arguments>`` with ``extra_path`` (a fake plugin's site) in front of ``PYTHONPATH``."""
    extra = {}
    if extra_path is not None:
        extra["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), os.environ.get("PYTHONPATH")]))
    return run_python(cwd, *arguments, env=extra, timeout=300)


LIST_COMMAND = ("-c", "from lossforge.cli import main; main()", "list")  # what the `lossforge` script runs


@pytest.mark.slow
def test_lossforge_list_reports_a_broken_plugin_and_exits_1(site: Site, tmp_path: Path) -> None:
    install_good(site)
    site.install(
        "lf-test-broken",
        package="lf_test_broken",
        files={"__init__.py": "raise RuntimeError('the plugin is broken')"},
        entry_points={"lossforge.losses": {"broken_loss": "lf_test_broken:Loss"}},
    )
    result = run_with_path(tmp_path, *LIST_COMMAND, extra_path=site.root)
    assert result.returncode == 1, result.stderr[-2000:]
    out = result.stdout
    assert "FAILED  lf-test-broken==0.1.0" in out and "'broken_loss = lf_test_broken:Loss'" in out
    assert "RuntimeError: the plugin is broken" in out
    assert any(line.split()[:1] == ["scaled_l1"] and "lf-test-good==0.1.0" in line for line in out.splitlines())
    assert any(line.split()[:1] == ["cross_entropy"] and "FAILED" not in line for line in out.splitlines())


# -- plugin config folders on Hydra's search path --------------------------------------------------


def compose_config(*overrides: str) -> DictConfig:
    register_components(with_parameters=True)
    # Hydra finds plugins by scanning the `hydra_plugins` namespace, which setuptools' editable installs hide
    # (facebookresearch/hydra#2359); registering by hand is harmless where the scan did find it.
    Plugins.instance().register(LossforgeSearchPathPlugin)
    GlobalHydra.instance().clear()
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


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

EXTRAS = "lossforge-extras"
try:
    EXTRAS_VERSION: str | None = metadata.version(EXTRAS)
except metadata.PackageNotFoundError:
    EXTRAS_VERSION = None
needs_extras = pytest.mark.skipif(
    EXTRAS_VERSION is None,
    reason="the example plugin is not installed: `pip install -e plugins/lossforge-extras`",
)


@needs_extras
def test_example_plugin_components_are_listed_with_their_provider() -> None:
    refreshed()
    for name in ("poly1_cross_entropy", "asymmetric", "multi_similarity", "info_nce"):
        assert lossforge.loss_info(name).provider == f"{EXTRAS}=={EXTRAS_VERSION}"
    assert lossforge.miner_info("multi_similarity").provider == f"{EXTRAS}=={EXTRAS_VERSION}"


@needs_extras
def test_example_plugin_presets_and_experiments_compose() -> None:
    refreshed()
    cfg = compose_config("loss=poly1_imagenet")
    assert cfg.loss.name == "poly1_cross_entropy" and cfg.loss.epsilon == 2.0
    cfg = compose_config("experiment=extras_asymmetric_multilabel")
    assert cfg.loss.name == "asymmetric" and cfg.dataset.name == "digits_multilabel"


@needs_extras
@pytest.mark.slow
def test_the_command_line_composes_a_plugin_preset(tmp_path: Path) -> None:
    # From outside the checkout, where an editable install hides `hydra_plugins` from Hydra's own scan.
    result = run_lossforge(tmp_path, "loss=poly1_imagenet", "--cfg", "job")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "name: poly1_cross_entropy" in result.stdout and "epsilon: 2.0" in result.stdout


def test_plugin_config_options_lists_their_yaml_files(site: Site) -> None:
    install_configs(site, {"loss/lf_test_preset.yaml": HUBER_PRESET, "experiment/lf_test_run.yaml": "seed: 1\n"})
    assert "lf_test_preset" in plugin_config_options("loss")
    assert "lf_test_run" in plugin_config_options("experiment")
    assert "lf_test_preset" not in plugin_config_options("miner")


@needs_extras
@pytest.mark.slow
def test_example_plugin_trains_end_to_end_and_records_its_provider(tmp_path: Path) -> None:
    overrides = ["trainer.max_epochs=1", "model.hidden=[32]", "trainer.enable_progress_bar=false"]
    result = run_lossforge(tmp_path, "loss=poly1_cross_entropy", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.params["loss.name"] == "poly1_cross_entropy" and run.data.params["loss.epsilon"] == "1.0"
    assert run.data.tags["loss.provider"] == f"{EXTRAS}=={EXTRAS_VERSION}"

    listed = run_python(tmp_path, *LIST_COMMAND)
    line = next(line for line in listed.stdout.splitlines() if line.split()[:1] == ["poly1_cross_entropy"])
    assert "multiclass" in line and f"{EXTRAS}=={EXTRAS_VERSION}" in line and "FAILED" not in line
