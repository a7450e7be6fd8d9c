"""Cross-batch memory (``lossforge.mining.memory``): the ring buffer, tuples anchored in the batch, gradients to
the batch only, the plain loss when the memory is empty, an explicit loop, and a run with ``memory=xbm``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import compose_config, own_loss_names, own_miner_names
from omegaconf import OmegaConf

from lossforge import build_loss, build_miner
from lossforge.contract import Task, loss_traits, miner_traits, prepare_loss
from lossforge.data.loaders import MPerClassSampler
from lossforge.losses.metric import ContrastiveLoss, TripletLoss
from lossforge.mining.memory import (
    CrossBatchMemory,
    anchored_pair_indices,
    anchored_triplet_indices,
    anchored_tuples,
    cross_batch_loss,
    memory_tuples,
)
from lossforge.mining.tuples import all_pair_indices, all_triplet_indices
from lossforge.registry import LOSSES
from lossforge.training.build import ConfigError, build, build_memory

#: Every metric loss of lossforge and its example plugin that takes pairs or triplets, with each miner of its
#: tuple kind and without one.
TUPLE_LOSSES = [
    name
    for name in own_loss_names()
    if Task.METRIC in loss_traits(LOSSES.load(name)).tasks and loss_traits(LOSSES.load(name)).tuple_kind is not None
]
LOSS_MINER = [
    (loss, miner)
    for loss in TUPLE_LOSSES
    for miner in [None, *own_miner_names()]
    if miner is None or miner_traits(build_miner(miner)).tuple_kind == loss_traits(LOSSES.load(loss)).tuple_kind
]


def make_loss(name: str, labels: torch.Tensor, dim: int) -> torch.nn.Module:
    loss = build_loss(name)
    prepare_loss(loss, targets=labels, num_classes=int(labels.max()) + 1, embedding_dim=dim)
    return loss


def batch_and_memory(seed: int = 0, batch: int = 8, memory: int = 12, dim: int = 4) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.nn.functional.normalize(
        torch.randn(batch + memory, dim, generator=generator, dtype=torch.float64)
    )
    labels = torch.randint(3, (batch + memory,), generator=generator)
    return embeddings[:batch], labels[:batch], embeddings[batch:], labels[batch:]


# -- the ring buffer ---------------------------------------------------------------------------------------
def test_the_memory_fills_then_wraps_around_oldest_first() -> None:
    memory = CrossBatchMemory(size=5, embedding_dim=1)
    assert len(memory) == 0 and memory.contents()[0].shape == (0, 1)
    memory.enqueue(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([0, 1, 2]))
    assert len(memory) == 3 and memory.contents()[1].tolist() == [0, 1, 2]
    memory.enqueue(torch.tensor([[3.0], [4.0], [5.0]]), torch.tensor([3, 4, 5]))  # 0 is overwritten
    embeddings, labels = memory.contents()
    assert len(memory) == 5 and labels.tolist() == [1, 2, 3, 4, 5] and embeddings.flatten().tolist() == [1, 2, 3, 4, 5]
    memory.enqueue(torch.arange(6.0, 13.0)[:, None], torch.arange(6, 13))  # a batch bigger than the memory
    assert memory.contents()[1].tolist() == [8, 9, 10, 11, 12]


def test_the_memory_is_in_the_state_dict() -> None:
    memory = CrossBatchMemory(size=4, embedding_dim=2, start_after_steps=3)
    memory.loss(ContrastiveLoss(), None, torch.randn(3, 2), torch.tensor([0, 1, 0]))
    restored = CrossBatchMemory(size=4, embedding_dim=2, start_after_steps=3)
    restored.load_state_dict(memory.state_dict())
    assert (len(restored), restored.position, restored.steps) == (3, 3, 1)
    assert torch.equal(restored.contents()[0], memory.contents()[0])
    assert torch.equal(restored.contents()[1], memory.contents()[1])


def test_bad_settings_name_memory_xbm() -> None:
    with pytest.raises(ValueError, match=r"memory=xbm: expected `size` >= 1, got 0"):
        CrossBatchMemory(size=0, embedding_dim=2)
    with pytest.raises(ValueError, match=r"memory=xbm: expected `start_after_steps` >= 0"):
        CrossBatchMemory(size=4, embedding_dim=2, start_after_steps=-1)
    with pytest.raises(ValueError, match=r"memory=xbm: expected embeddings \(B, 2\)"):
        CrossBatchMemory(size=4, embedding_dim=2).enqueue(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))


# -- tuples anchored in the batch ------------------------------------------------------------------------------
@pytest.mark.parametrize("miner_name", own_miner_names())
def test_mined_tuples_are_anchored_in_the_batch(miner_name: str) -> None:
    batch, labels, memory, memory_labels = batch_and_memory()
    miner = build_miner(miner_name)
    embeddings, all_labels = torch.cat([batch, memory]), torch.cat([labels, memory_labels])
    kind = miner_traits(miner).tuple_kind
    torch.manual_seed(0)
    tuples = memory_tuples(miner, embeddings, all_labels, len(labels), tuple_kind=kind)
    torch.manual_seed(0)
    everything = miner(embeddings, all_labels)
    anchors = (tuples[0], tuples[2]) if kind == "pair" else (tuples[0],)
    assert all(bool((anchor < len(labels)).all()) for anchor in anchors)
    assert not bool((tuples[0] == tuples[1]).any())  # no sample paired with itself
    # exactly the miner's tuples whose anchor is in the batch
    if kind == "pair":
        keep_positive, keep_negative = everything[0] < len(labels), everything[2] < len(labels)
        expected = (*(t[keep_positive] for t in everything[:2]), *(t[keep_negative] for t in everything[2:]))
    else:
        keep = everything[0] < len(labels)
        expected = tuple(t[keep] for t in everything)
    assert all(torch.equal(got, want) for got, want in zip(tuples, expected, strict=True))


def test_without_a_miner_every_tuple_anchored_in_the_batch() -> None:
    labels = torch.tensor([0, 1, 0, 1, 0, 2])
    pairs = anchored_pair_indices(labels, 2)
    full = all_pair_indices(labels)
    keep_positive, keep_negative = full[0] < 2, full[2] < 2
    assert torch.equal(pairs[0], full[0][keep_positive]) and torch.equal(pairs[1], full[1][keep_positive])
    assert torch.equal(pairs[2], full[2][keep_negative]) and torch.equal(pairs[3], full[3][keep_negative])
    triplets = anchored_triplet_indices(labels, 3)
    keep = all_triplet_indices(labels)[0] < 3
    assert all(torch.equal(got, want[keep]) for got, want in zip(triplets, all_triplet_indices(labels), strict=True))
    torch.manual_seed(0)
    capped = anchored_triplet_indices(labels, 3, max_triplets=4)
    assert 1 <= len(capped[0]) <= 4 and bool((capped[0] < 3).all())
    triples = set(zip(*(t.tolist() for t in capped), strict=True))
    assert triples <= set(zip(*(t.tolist() for t in triplets), strict=True))


def test_anchored_tuples_drops_self_pairs_and_memory_anchors() -> None:
    triplets = (torch.tensor([0, 1, 3, 1]), torch.tensor([2, 1, 0, 4]), torch.tensor([5, 5, 5, 6]))
    assert [t.tolist() for t in anchored_tuples(triplets, 2)] == [[0, 1], [2, 4], [5, 6]]
    with pytest.raises(ValueError, match=r"pairs .* or triplets"):
        anchored_tuples((torch.tensor([0]),) * 2, 1)


# -- the loss ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("loss_name", "miner_name"), LOSS_MINER)
def test_with_an_empty_memory_it_is_the_plain_loss(loss_name: str, miner_name: str | None) -> None:
    batch, labels, _, _ = batch_and_memory()
    loss = make_loss(loss_name, labels, batch.shape[1]).double()
    miner = build_miner(miner_name) if miner_name else None
    torch.manual_seed(0)
    plain = loss(batch, labels, miner(batch, labels) if miner else None)
    torch.manual_seed(0)
    value = cross_batch_loss(loss, miner, batch, labels, batch[:0], labels[:0])
    torch.testing.assert_close(value, plain)


@pytest.mark.parametrize(("loss_name", "miner_name"), LOSS_MINER)
def test_gradients_reach_the_batch_only(loss_name: str, miner_name: str | None) -> None:
    batch, labels, memory, memory_labels = batch_and_memory(seed=1)
    batch.requires_grad_(True)
    memory.requires_grad_(True)  # were it not detached, the loss would reach it
    loss = make_loss(loss_name, labels, batch.shape[1]).double()
    miner = build_miner(miner_name) if miner_name else None
    value = cross_batch_loss(loss, miner, batch, labels, memory, memory_labels)
    assert value.dim() == 0 and math.isfinite(float(value))
    value.backward()
    assert batch.grad is not None and bool(torch.isfinite(batch.grad).all())
    assert memory.grad is None


@pytest.mark.parametrize("kind", ["contrastive", "triplet"])
def test_matches_an_explicit_loop_over_tuples_anchored_in_the_batch(kind: str) -> None:
    batch, labels, memory, memory_labels = batch_and_memory(seed=2, batch=4, memory=5, dim=3)
    embeddings, all_labels = torch.cat([batch, memory]), torch.cat([labels, memory_labels])
    terms = []
    for a in range(len(labels)):  # anchors: the batch only
        for p in range(len(all_labels)):
            if p == a:
                continue
            d_ap = float(torch.dist(embeddings[a], embeddings[p]))
            if kind == "contrastive":
                same = bool(all_labels[a] == all_labels[p])
                terms.append(d_ap**2 if same else max(1.0 - d_ap, 0.0) ** 2)
            elif all_labels[a] == all_labels[p]:
                for n in range(len(all_labels)):
                    if all_labels[n] != all_labels[a]:
                        d_an = float(torch.dist(embeddings[a], embeddings[n]))
                        terms.append(max(d_ap**2 - d_an**2 + 0.2, 0.0))
    loss = ContrastiveLoss(margin=1.0) if kind == "contrastive" else TripletLoss(margin=0.2)
    value = cross_batch_loss(loss, None, batch, labels, memory, memory_labels)
    assert len(terms) > 0
    assert float(value) == pytest.approx(sum(terms) / len(terms), rel=1e-9)


def test_warm_up_uses_the_batch_alone_while_the_memory_fills() -> None:
    memory = CrossBatchMemory(size=16, embedding_dim=4, start_after_steps=2)
    loss = ContrastiveLoss()
    batches = [batch_and_memory(seed=seed, batch=6, memory=0)[:2] for seed in range(3)]
    for step, (embeddings, labels) in enumerate(batches):
        embeddings = embeddings.float()
        before = memory.contents()
        value = memory.loss(loss, None, embeddings, labels)
        if step < 2:
            torch.testing.assert_close(value, loss(embeddings, labels))
        else:
            torch.testing.assert_close(value, cross_batch_loss(loss, None, embeddings, labels, *before))
            assert not torch.allclose(value, loss(embeddings, labels))
        assert len(memory) == min(6 * (step + 1), 16)


# -- configuration and a run ---------------------------------------------------------------------------------
def test_memory_is_refused_for_losses_without_tuples() -> None:
    with pytest.raises(ConfigError, match=r"memory=xbm .* loss 'cross_entropy' is not a metric loss.*memory=null"):
        build(compose_config("memory=xbm", "model.hidden=[8]"))

    class ProxyLoss(torch.nn.Module):  # a metric loss that scores proxies, not index tuples
        tasks = ("metric",)

    cfg = compose_config("loss=triplet", "memory=xbm")
    OmegaConf.update(cfg, "loss.name", "proxy_loss")
    with pytest.raises(ConfigError, match=r"takes no pairs or triplets \(tuple_kind=None\).*contrastive.*triplet"):
        build_memory(cfg, ProxyLoss(), embedding_dim=8)


def test_a_run_with_xbm_and_m_per_class_trains_and_checkpoints_the_memory(tmp_path: Path) -> None:
    import lightning as L

    from lossforge.distributed import Processes
    from lossforge.training.run import make_loaders

    cfg = compose_config(
        "loss=contrastive",
        "miner=hard_pairs",
        "memory=xbm",
        "memory.size=128",
        "sampler=m_per_class",
        "sampler.m=8",
        "batch_size=32",
        "model=embedding_mlp",
        "model.hidden=[16]",
        "model.embedding_dim=8",
    )
    built = build(cfg)
    memory = built.module.memory
    assert isinstance(memory, CrossBatchMemory) and memory.size == 128 and len(memory) == 0
    loaders = make_loaders(cfg, built, Processes())
    assert isinstance(loaders["train"].sampler, MPerClassSampler)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
    )
    trainer.fit(built.module, loaders["train"], loaders["val"])
    assert math.isfinite(float(trainer.callback_metrics["val/loss"]))
    assert 0.0 <= float(trainer.callback_metrics["val/map_at_r"]) <= 1.0
    assert memory.steps == len(loaders["train"]) and len(memory) == 128  # every training step, not validation
    trainer.save_checkpoint(tmp_path / "last.ckpt", weights_only=True)
    resumed = build(cfg).module
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    resumed.load_state_dict(checkpoint["state_dict"])
    assert resumed.memory is not None and resumed.memory.steps == memory.steps
    assert torch.equal(resumed.memory.contents()[0], memory.contents()[0])


def test_the_loss_traits_are_read_once_when_the_run_is_built_not_at_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the loss declares travels with the built objects (the module's ``traits``, the memory's
    ``tuple_kind``): building reads it once, and training steps — with a cross-batch memory, which needs the
    tuple kind at every step — never read it again."""
    import lossforge.mining.memory as memory_module
    import lossforge.training.build as build_module
    import lossforge.training.module as module_module

    reads: list[object] = []

    def counting(loss: object) -> object:
        reads.append(loss)
        return loss_traits(loss)

    for module in (build_module, module_module, memory_module):
        monkeypatch.setattr(module, "loss_traits", counting)
    cfg = compose_config("loss=triplet", "miner=all_triplets", "memory=xbm", "model=embedding_mlp", "model.hidden=[8]")
    built = build(cfg)
    assert len(reads) == 1 and built.module.traits.tuple_kind == "triplet" == built.module.memory.tuple_kind
    features, labels = built.data.train.features[:16], built.data.train.targets[:16]
    for step in range(3):
        built.module.training_step((features, labels), step)
    assert len(reads) == 1
