"""Config composition: every option of every group composes; registry options are typed."""

from __future__ import annotations

from importlib import resources

import pytest
from helpers import compose_config, own_loss_names, own_miner_names
from hydra.errors import ConfigCompositionException

import lossforge


def yaml_options(group: str) -> list[str]:
    folder = resources.files("lossforge.conf") / group
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def test_default_config() -> None:
    cfg = compose_config()
    assert cfg.model.name == "mlp" and list(cfg.model.hidden) == [512, 512] and cfg.model.activation == "tanh"
    assert cfg.dataset.name == "digits" and cfg.loss.name == "cross_entropy" and cfg.miner is None
    assert cfg.trainer.accelerator == "auto"


GROUP_OPTIONS = (
    [
        (group, option)
        for group in ("model", "dataset", "optimizer", "trainer", "logger", "experiment")
        for option in yaml_options(group)
    ]
    + [("loss", name) for name in own_loss_names()]
    + [("miner", name) for name in own_miner_names()]
)


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_option_of_every_group_composes(group: str, option: str) -> None:
    prefix = "+" if group == "metric_setup" else ""  # not in the primary defaults list: appended
    cfg = compose_config(f"{prefix}{group}={option}")
    if group in ("model", "dataset", "loss", "miner", "optimizer"):
        assert cfg[group].name == option


def test_registry_parameters_are_overrides_with_types() -> None:
    cfg = compose_config("loss=focal", "loss.gamma=0.5")
    assert cfg.loss.gamma == 0.5
    with pytest.raises(ConfigCompositionException):
        compose_config("loss=focal", "loss.gamma=abc")
    with pytest.raises(ConfigCompositionException):
        compose_config("loss=focal", "loss.gamme=1")


@pytest.mark.parametrize("option", yaml_options("metric_setup"))
def test_metric_setups_pair_a_loss_with_a_miner_of_its_tuple_kind(option: str) -> None:
    cfg = compose_config(f"+metric_setup={option}")
    loss = lossforge.registry.LOSSES.load(cfg.loss.name)
    if cfg.miner is not None:
        assert lossforge.registry.MINERS.load(cfg.miner.name).tuple_kind == loss.tuple_kind


def test_miner_margin_defaults_to_the_loss_margin() -> None:
    cfg = compose_config("loss=triplet", "miner=semihard_triplets")
    assert cfg.miner.name == "semihard_triplets" and cfg.miner.margin is None  # filled from the loss
