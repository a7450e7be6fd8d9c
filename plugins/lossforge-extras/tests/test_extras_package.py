"""The package itself: it needs only torch, imports nothing on its own, and its configs match its losses."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import metadata, resources

import pytest
from omegaconf import OmegaConf

import lossforge_extras
from lossforge_extras.classification import Poly1CrossEntropyLoss


def test_the_installed_version_is_the_package_version() -> None:
    assert metadata.version("lossforge-extras") == lossforge_extras.__version__


def test_it_depends_on_torch_only_and_never_on_lossforge() -> None:
    requirements = [r for r in metadata.requires("lossforge-extras") or [] if "extra ==" not in r]
    assert requirements == ["torch>=2.2"]
    for module in ("classification", "metric", "miners", "similarity", "_common"):
        source = inspect.getsource(__import__(f"lossforge_extras.{module}", fromlist=["_"]))
        assert "import lossforge\n" not in source and "from lossforge." not in source


def test_importing_the_package_or_its_configs_imports_no_torch() -> None:
    code = "import sys, lossforge_extras, lossforge_extras.conf; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_entry_point_names_a_class_here() -> None:
    for group in ("lossforge.losses", "lossforge.miners"):
        entry_points = [e for e in metadata.entry_points(group=group) if e.dist.metadata["Name"] == "lossforge-extras"]
        assert entry_points
        for entry_point in entry_points:
            assert inspect.isclass(entry_point.load())
    (configs,) = [e for e in metadata.entry_points(group="lossforge.configs") if e.value.startswith("lossforge_extras")]
    assert configs.value == "lossforge_extras.conf"


CONFIGS = sorted(
    f"{group.name}/{file.name}"
    for group in resources.files("lossforge_extras.conf").iterdir()
    if group.is_dir() and not group.name.startswith("_")
    for file in group.iterdir()
    if file.name.endswith(".yaml")
)


@pytest.mark.parametrize("path", CONFIGS)
def test_configs_parse(path: str) -> None:
    assert OmegaConf.create((resources.files("lossforge_extras.conf") / path).read_text()) is not None


def test_the_poly1_preset_sets_a_real_parameter() -> None:
    preset = OmegaConf.create((resources.files("lossforge_extras.conf") / "loss/poly1_imagenet.yaml").read_text())
    parameters = inspect.signature(Poly1CrossEntropyLoss).parameters
    assert list(preset.defaults) == ["poly1_cross_entropy", "_self_"]
    assert {key for key in preset if key != "defaults"} <= set(parameters)
    Poly1CrossEntropyLoss(**{key: value for key, value in preset.items() if key != "defaults"})
