"""The contract kit's miner checks ([MINER_CHECKS][lossforge.testing.miners.MINER_CHECKS]): valid index tuples, unique
labels, feeding a loss of the miner's tuple kind, and the search space — each a named function of a
[MinerSubject][lossforge.testing.miners.MinerSubject]."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lossforge.components import list_miners, miner_info
from lossforge.contract import Task, miner_traits
from lossforge.registry import LOSSES, MINERS
from lossforge.testing.common import (
    Check,
    _bind,
    _expect,
    _provided_by,
    _resolve,
    _short,
    check_constructor,
    check_declarations,
    check_search_space,
    make_inputs,
)


@dataclass(frozen=True)
class MinerSubject:
    """What a miner check needs: the class and a builder."""

    cls: type
    label: str
    build: Callable[..., Any]  # (**overrides) -> a miner
    kind: str = "miner"

    def read_traits(self) -> Any:
        return miner_traits(self.cls)

    def check_drawn(self, values: Mapping[str, Any], drawn: str) -> None:
        _check_drawn_miner(self, values, drawn)


def miner_names(pattern: str = "*", *, distribution: str | None = None) -> list[str]:
    """Registered miner names matching `pattern`, optionally only those a given package provides."""
    return [name for name in list_miners(pattern) if _provided_by(miner_info(name).distribution, distribution)]


def miner_checks(miner: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> list[Check]:
    """Every miner check ([MINER_CHECKS][lossforge.testing.miners.MINER_CHECKS]) bound to `miner` (a registry name or a
    miner class)."""
    cls, label = _resolve(miner, MINERS, "miner")
    options = dict(params or {})

    def build(**overrides: Any) -> nn.Module:
        settings = {**options, **overrides}
        return MINERS.build(miner, **settings) if isinstance(miner, str) else cls(**settings)

    subject = MinerSubject(cls, label, build)
    return [Check(_short(miner), check.__name__, _bind(check, subject)) for check in MINER_CHECKS]


def check_miner(miner: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> None:
    """Run every miner check on `miner`; raise the first `AssertionError`."""
    for check in miner_checks(miner, params=params):
        check()


def check_tuples(subject: MinerSubject) -> None:
    """Valid index tuples for a batch, in float32 and float64."""
    miner = subject.build()
    kind = miner_traits(miner).tuple_kind
    for dtype in (torch.float32, torch.float64):
        embeddings, labels = make_inputs(Task.METRIC, dtype=dtype)
        _check_tuples(miner(embeddings, labels), labels, kind, f"{subject.label} [{kind}, dtype={dtype}, a batch]")


def check_unique_labels(subject: MinerSubject) -> None:
    """Valid (positive-free) tuples when every label is unique."""
    miner = subject.build()
    kind = miner_traits(miner).tuple_kind
    embeddings, labels = make_inputs(Task.METRIC)
    unique = torch.arange(labels.numel())
    _check_tuples(miner(embeddings, unique), unique, kind, f"{subject.label} [{kind}, unique labels]")


def check_feeds_a_loss(subject: MinerSubject) -> None:
    """A lossforge loss of the miner's tuple kind trains on its tuples, through the training module."""
    from lossforge.training.module import LossTask

    miner = subject.build()
    kind = miner_traits(miner).tuple_kind
    loss = LOSSES.build("contrastive" if kind == "pair" else "triplet")
    embeddings, labels = make_inputs(Task.METRIC)
    module = LossTask(model=nn.Identity(), loss=loss, task=Task.METRIC, num_outputs=embeddings.shape[1], miner=miner)
    value = module.loss_value(embeddings, labels, mine=True)
    _expect(bool(torch.isfinite(value)), f"{subject.label}: a {kind} loss on its tuples is not finite: {value}")
    value.backward()
    _expect(embeddings.grad is not None, f"{subject.label}: a {kind} loss on its tuples gives no gradient")


MINER_CHECKS = (
    check_declarations,
    check_constructor,
    check_tuples,
    check_unique_labels,
    check_feeds_a_loss,
    check_search_space,
)
"""Every miner check, in the order they run."""


def _check_tuples(tuples: Any, labels: Tensor, tuple_kind: str, where: str) -> None:
    length = 4 if tuple_kind == "pair" else 3
    _expect(
        isinstance(tuples, tuple) and len(tuples) == length,
        f"{where}: expected a tuple of {length} index tensors, got {type(tuples).__name__} "
        f"of length {len(tuples) if isinstance(tuples, tuple) else '?'}",
    )
    for position, indices in enumerate(tuples):
        _expect(
            isinstance(indices, Tensor) and indices.dtype == torch.int64 and indices.dim() == 1,
            f"{where}: element {position} must be a 1-D int64 tensor, got "
            f"{getattr(indices, 'dtype', type(indices))} {tuple(getattr(indices, 'shape', ()))}",
        )
        _expect(not indices.requires_grad, f"{where}: element {position} requires grad (mine under no_grad)")
        _expect(
            bool(((indices >= 0) & (indices < labels.numel())).all()),
            f"{where}: element {position} has indices outside [0, {labels.numel() - 1}]",
        )
    labels = labels.to(tuples[0].device)
    if tuple_kind == "pair":
        anchors, positives, negative_anchors, negatives = tuples
        _expect(
            anchors.numel() == positives.numel() and negative_anchors.numel() == negatives.numel(),
            f"{where}: anchor and partner tensors differ in length",
        )
    else:
        anchors, positives, negatives = tuples
        negative_anchors = anchors
        _expect(
            anchors.numel() == positives.numel() == negatives.numel(),
            f"{where}: anchor, positive and negative tensors differ in length",
        )
    _expect(bool((labels[anchors] == labels[positives]).all()), f"{where}: a positive has another label")
    _expect(bool((anchors != positives).all()), f"{where}: a positive is its own anchor")
    _expect(
        bool((labels[negative_anchors] != labels[negatives]).all()),
        f"{where}: a negative shares the anchor's label",
    )


def _check_drawn_miner(subject: MinerSubject, values: Mapping[str, Any], drawn: str) -> None:
    try:
        miner = subject.build(**values)
    except Exception as error:
        raise AssertionError(f"{subject.label} {drawn}: building it raised {type(error).__name__}: {error}") from error
    kind = miner_traits(miner).tuple_kind
    for dtype in (torch.float32, torch.float64):
        embeddings, labels = make_inputs(Task.METRIC, dtype=dtype)
        _check_tuples(miner(embeddings, labels), labels, kind, f"{subject.label} [{kind}, dtype={dtype}] {drawn}")
