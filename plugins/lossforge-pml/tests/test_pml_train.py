"""End to end, in-process: composed from the command line's overrides, built by lossforge, trained one epoch."""

from __future__ import annotations

import lightning as L
import torch
from lossforge.contract import loss_parameters
from lossforge.data.loaders import make_loader
from lossforge.hydra_options import compose
from lossforge.training.build import build
from pytest import raises

QUICK = ("model=embedding_mlp", "model.hidden=[32]", "model.embedding_dim=16", "trainer.max_epochs=1", "seed=0")


def fit_one_epoch(*overrides: str) -> tuple[object, dict[str, float]]:
    cfg = compose([*overrides, *QUICK])
    built = build(cfg)
    train = make_loader(built.data.train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed)
    val = make_loader(built.data.val, batch_size=cfg.eval_batch_size, shuffle=False, seed=cfg.seed)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(built.module, train, val)
    return built, {key: float(value) for key, value in trainer.callback_metrics.items()}


def test_arcface_trains_its_class_weights_in_their_own_group() -> None:
    cfg = compose(["loss=pml_arcface_loss", "loss.scale=30", *QUICK])
    assert cfg.loss.scale == 30.0 and cfg.loss.margin == 28.6
    built, metrics = fit_one_epoch("loss=pml_arcface_loss", "loss.scale=30")
    loss = built.module.loss
    assert [tuple(p.shape) for p in loss_parameters(loss)] == [(16, 10)]  # embedding_dim x digits' 10 classes
    untrained = build(compose(["loss=pml_arcface_loss", "loss.scale=30", *QUICK])).module.loss.pml.W  # same seed
    assert not torch.equal(loss.pml.W.detach(), untrained.detach())  # the epoch trained them
    assert len(built.module.configure_optimizers().param_groups) == 2
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and 0 < metrics["val/map_at_r"] <= 1


def test_triplet_margin_loss_with_the_multi_similarity_miner() -> None:
    built, metrics = fit_one_epoch("loss=pml_triplet_margin_loss", "miner=pml_multi_similarity_miner")
    assert type(built.module.loss).__name__ == "pml_triplet_margin_loss"
    assert type(built.module.miner).__name__ == "pml_multi_similarity_miner"
    assert 0 < metrics["train/active_fraction"] <= 1 and 0 < metrics["val/recall_at_1"] <= 1


def test_every_pml_loss_takes_either_kind_of_tuples_as_pml_converts_them() -> None:
    # The example pairs a triplet loss with a pair miner: PML turns the pairs into triplets.
    built = build(compose(["loss=pml_margin_loss", "miner=pml_triplet_margin_miner", *QUICK]))
    assert built.module.loss.tuple_kind is None and built.module.miner.tuple_kind == "triplet"


def test_typed_overrides_fail_while_composing() -> None:
    from hydra.errors import ConfigCompositionException

    with raises(ConfigCompositionException):
        compose(["loss=pml_arcface_loss", "loss.scale=abc"])
    with raises(ConfigCompositionException):
        compose(["loss=pml_arcface_loss", "loss.scael=30"])
