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
    if cfg.miner is not None:  # the same kind, or triplets whose pairs a pair loss scores
        mined = lossforge.registry.MINERS.load(cfg.miner.name).tuple_kind
        assert mined == loss.tuple_kind or (mined, loss.tuple_kind) == ("triplet", "pair")


def test_miner_margin_defaults_to_the_loss_margin() -> None:
    cfg = compose_config("loss=triplet", "miner=semihard_triplets")
    assert cfg.miner.name == "semihard_triplets" and cfg.miner.margin is None  # filled from the loss


def test_a_triplet_miner_feeds_a_pair_loss_its_pairs_and_keeps_its_own_margin() -> None:
    from lossforge.mining.miners import PairsFromTriplets
    from lossforge.training.build import ConfigError, build_miner

    cfg = compose_config("loss=contrastive", "loss.margin=2.0", "miner=semihard_triplets")
    loss = lossforge.registry.LOSSES.build("contrastive", margin=2.0)
    miner = build_miner(cfg, loss)
    assert isinstance(miner, PairsFromTriplets)
    assert miner.triplet_miner.margin is None  # the triplet miner's own default, not the contrastive margin
    assert miner.triplet_miner.distance == loss.distance  # the distance is shared
    with pytest.raises(ConfigError, match="takes triplets but miner 'hard_pairs' mines pairs"):
        build_miner(compose_config("loss=triplet", "miner=hard_pairs"), lossforge.registry.LOSSES.build("triplet"))
