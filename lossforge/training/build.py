"""Config → objects: data, loss, miner, model and the LightningModule, in a fixed order, one log line each.

Nothing is built from a module path in the config: components are named by registry name, and every
check that a combination can work (the loss serves the dataset's task, the miner mines what the loss
takes, a classifier is not tested on classes it never saw) runs here, before any training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lossforge.components import list_losses, list_miners
from lossforge.contract import (
    LossTraits,
    Task,
    loss_traits,
    miner_traits,
    prepare_loss,
    trainable_tasks,
    training_task,
)
from lossforge.data import DataSplits, load_dataset
from lossforge.data.device import input_pipeline
from lossforge.data.samples import StreamedSplit, split_fingerprint
from lossforge.mining.memory import MEMORIES, CrossBatchMemory
from lossforge.mining.miners import PairsFromTriplets
from lossforge.models import build_model, count_parameters
from lossforge.registry import LOSSES, MINERS
from lossforge.tasks import spec_for
from lossforge.training.module import LossTask
from lossforge.training.optim import OptimizerConfig

log = logging.getLogger("lossforge")


class ConfigError(ValueError):
    """A configuration that cannot work (a loss that does not serve the dataset's task, …)."""


@dataclass
class Built:
    """Everything `train` builds before fitting (also what tests inspect)."""

    data: DataSplits
    task: Task
    module: LossTask
    provenance: dict[str, str]
    """MLflow tags that say which data and model ran: `data.test_digest` (docs/decisions.md §1), the
    dataset's own provenance (a CSV file's path and SHA-256, …), `model.parameters`."""


def params(node: DictConfig | None) -> dict[str, Any]:
    """A component's config node as keyword arguments (its `name` left out)."""
    values = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    assert isinstance(values, dict)
    values.pop("name", None)
    return values  # type: ignore[return-value]


def build_data(dataset: DictConfig) -> DataSplits:
    """The dataset a `dataset` config node names, drawn from its `split_seed` (default 0) — never from the
    run seed (docs/decisions.md §1) — and built once per process ([lossforge.data.load_dataset][])."""
    values = OmegaConf.to_container(dataset, resolve=True)
    assert isinstance(values, dict)
    return load_dataset({str(key): value for key, value in values.items()})


def build(cfg: DictConfig) -> Built:
    """Build data, loss, miner, model and the LightningModule from `cfg` — no training, no tracking."""
    check_trainer(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = build_data(cfg.dataset)
    log.info(
        "data     %s: %s task, %d/%d/%d train/val/test samples of shape %s (%s), split seed %s",
        data.name,
        data.task,
        len(data.train.targets),
        len(data.val.targets),
        len(data.test.targets),
        data.input_shape,
        str(data.train.dtype).removeprefix("torch.") + (", streamed" if isinstance(data.train, StreamedSplit) else ""),
        cfg.dataset.get("split_seed") or 0,
    )

    loss_name = cfg.loss.name
    loss = LOSSES.build(loss_name, **params(cfg.loss))
    traits = loss_traits(loss)
    task = training_task(traits.tasks, data.task)
    if task is None:
        raise ConfigError(
            f"Loss {loss_name!r} serves {', '.join(traits.tasks)}, but dataset {data.name!r} is a {data.task} "
            f"task. Losses that fit {data.name!r}: {', '.join(losses_that_fit(data.task)) or 'none'}."
        )
    spec = spec_for(task)
    if spec.class_labels:
        unseen = sorted(set(data.test.targets.unique().tolist()) - set(data.train.targets.unique().tolist()))
        if unseen:
            raise ConfigError(
                f"Dataset {data.name!r} tests on classes never seen in training ({unseen}): a {task} classifier "
                f"cannot predict them. Evaluate on unseen classes with a metric loss (retrieval), e.g. "
                f"loss=triplet miner=semihard_triplets, or drop held_out_classes."
            )
    log.info("loss     %r on the %s task", loss, task)

    if cfg.get("miner") is not None and not spec.embedding:
        raise ConfigError(
            f"Miner {cfg.miner.name!r} mines pairs/triplets for metric losses, but loss {loss_name!r} "
            f"is a {task} loss. Drop the miner (miner=null) or pick a metric loss: "
            f"{', '.join(list_losses(task=Task.METRIC)) or 'none'}."
        )
    miner = build_miner(cfg, loss, traits=traits) if cfg.get("miner") is not None else None

    model_name = cfg.model.name
    inputs = input_pipeline(
        dtype=data.train.dtype,
        input_shape=data.input_shape,
        mean=data.mean,
        std=data.std,
        augment=list(cfg.dataset.get("augment") or ()),
    )
    model = build_model(
        model_name,
        input_shape=data.input_shape,
        output_dim=data.num_outputs,
        embedding=spec.embedding,
        inputs=inputs,
        **params(cfg.model),
    )
    parameters = count_parameters(model)
    if spec.embedding:  # one rule for every model: the embedding width as output, L2-normalised unless told not
        log.info(
            "model    %s as an embedding model for the %s loss: output_dim = model.embedding_dim, %s",
            model_name,
            loss_name,
            "L2-normalised" if cfg.model.get("normalize", True) else "not normalised (model.normalize=false)",
        )
    log.info("model    %s with %s parameters", model_name, f"{parameters:,}")
    # After the model: class weights need the targets; a learnable loss sizes its parameters (proxies) by the
    # classes and the width of the model's output, and draws them from the run's seeded generator.
    embedding_dim = output_width(model, data.train.head(1)) if spec.embedding else None
    prepare_loss(loss, targets=data.train.targets, num_classes=data.num_outputs, embedding_dim=embedding_dim)
    memory = build_memory(cfg, loss, embedding_dim, traits=traits) if cfg.get("memory") is not None else None

    module = LossTask(
        model=model,
        loss=loss,
        miner=miner,
        memory=memory,
        task=task,
        traits=traits,  # read once, above: the module and the memory use these, never the loss again
        num_outputs=data.num_outputs,
        class_names=data.class_names,
        optimizer=OptimizerConfig(name=cfg.optimizer.name, **params(cfg.optimizer)),  # params() drops the name
    )
    provenance = {
        "data.test_digest": split_fingerprint(data.test),
        **{f"data.{key}": value for key, value in data.provenance.items()},
        "model.parameters": str(parameters),
    }
    return Built(data=data, task=task, module=module, provenance=provenance)


def output_width(model: nn.Module, sample: torch.Tensor) -> int:
    """The width of `model`'s output: zeros shaped like `sample` (one sample, `(1, *input_shape)`) through
    it in eval mode (no dropout, so no random draw).

    ```pycon
    >>> output_width(nn.Linear(5, 3), torch.ones(1, 5))
    3

    ```
    """
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return int(model(torch.zeros_like(sample)).shape[-1])
    finally:
        model.train(training)


def check_trainer(trainer: DictConfig) -> None:
    """Refuse trainer settings that run without a word but measure nothing: `max_epochs=0` tests an untrained
    model, and Lightning's `-1` trains until killed (a comparison needs runs that end).

    ```pycon
    >>> check_trainer(OmegaConf.create({"max_epochs": 0}))
    Traceback (most recent call last):
    ...
    lossforge.training.build.ConfigError: trainer.max_epochs must be >= 1 (got 0): ...

    ```
    """
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and max_epochs < 1:
        raise ConfigError(
            f"trainer.max_epochs must be >= 1 (got {max_epochs}): a run of 0 epochs tests an untrained model; "
            f"-1 (train forever) is not supported"
        )


def losses_that_fit(dataset_task: str) -> list[str]:
    """Every registered loss that can train on a dataset of `dataset_task` (for error messages)."""
    return sorted({name for task in trainable_tasks(dataset_task) for name in list_losses(task=task)})


def build_memory(
    cfg: DictConfig, loss: Any, embedding_dim: int | None, *, traits: LossTraits | None = None
) -> CrossBatchMemory:
    """The configured cross-batch memory (`memory=xbm`) for embeddings of `embedding_dim` (`None`: the
    model is no embedding model). Fails unless the loss is a metric loss that takes pairs or triplets: the
    memory reaches the loss only through index tuples. `traits`: the loss's, as [build][lossforge.training.build.build]
    read them (read from the loss when not given)."""
    traits = traits or loss_traits(loss)
    name = cfg.memory.get("name")
    if name not in MEMORIES:
        raise ConfigError(f"Unknown memory {name!r}; expected one of {', '.join(MEMORIES)} (or memory=null).")
    if embedding_dim is None or traits.tuple_kind is None:
        what = "is not a metric loss" if embedding_dim is None else "takes no pairs or triplets (tuple_kind=None)"
        fitting = [n for n in list_losses(task=Task.METRIC) if loss_traits(LOSSES.load(n)).tuple_kind is not None]
        raise ConfigError(
            f"memory={name} mines each batch against the embeddings of recent batches and hands the loss pairs "
            f"or triplets, but loss {cfg.loss.name!r} {what}. Drop the memory (memory=null) or pick a loss "
            f"that takes pairs or triplets: {', '.join(fitting) or 'none'}."
        )
    memory = CrossBatchMemory(**params(cfg.memory), embedding_dim=embedding_dim, tuple_kind=traits.tuple_kind)
    log.info("memory   %r", memory)
    return memory


def build_miner(cfg: DictConfig, loss: Any, *, traits: LossTraits | None = None) -> Any:
    """The configured miner; a `margin` or `distance` left `None` is the loss's, so a loss and its
    miner share one unless told otherwise. A triplet miner for a pair loss gives the pairs of its triplets
    (`PairsFromTriplets`; it keeps its own margin, a triplet margin being no contrastive margin). Fails if
    the loss takes triplets and the miner mines pairs."""
    miner_params = params(cfg.miner)
    traits = traits or loss_traits(loss)
    mined = miner_traits(MINERS.load(cfg.miner.name)).tuple_kind
    wanted = traits.tuple_kind
    converts = wanted == "pair" and mined == "triplet"
    shared_values = (
        (("distance", traits.distance),) if converts else (("margin", traits.margin), ("distance", traits.distance))
    )
    for shared, value in shared_values:
        if shared in miner_params and miner_params[shared] is None and value is not None:
            miner_params[shared] = value
    miner = MINERS.build(cfg.miner.name, **miner_params)
    if converts:
        miner = PairsFromTriplets(miner)
    elif wanted is not None and wanted != mined:  # a triplet loss cannot be made from pairs
        raise ConfigError(
            f"Loss {cfg.loss.name!r} takes {wanted}s but miner {cfg.miner.name!r} mines {mined}s. "
            f"Miners that mine {wanted}s: {', '.join(list_miners(tuple_kind=wanted))}."
        )
    log.info("miner    %r", miner)
    return miner
