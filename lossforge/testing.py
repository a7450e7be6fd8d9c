"""The contract kit: the checks every loss and miner must pass, lossforge's own and any plugin's.

A plugin's whole contract test is::

    import pytest
    from lossforge.testing import check_loss, loss_names

    @pytest.mark.parametrize("name", loss_names(distribution="my-plugin"))
    def test_contract(name):
        check_loss(name)

The checks raise ``AssertionError`` with a message naming the component, task, reduction and dtype, so
they work under any test runner; nothing here needs pytest.

What :func:`check_loss` checks, for every task the loss declares, every dtype and every reduction:

* the constructor takes keyword-only parameters, each with a default and a type annotation, including
  ``reduction``; the loss builds with nothing but ``reduction`` given;
* the output is finite and has the prediction's dtype; ``"none"`` is ``(N,)`` (any 1-D shape for metric
  losses, whose values are per pair or triplet); ``"sum"`` equals ``"none".sum()``;
* ``"mean"`` equals ``"none".mean()``, unless the loss sets ``mean_is_weighted = True`` (a class or
  instance attribute): then its ``"none"`` values are :math:`w_i \\ell_i` and ``"mean"`` is
  :math:`\\sum_i w_i \\ell_i / \\sum_i w_i`. The weights are the loss's own business, so the kit checks
  what every weighted mean satisfies: it is finite, it is unchanged when the batch is repeated twice,
  and it has the sign of the sum (the implied total weight ``sum / mean`` is positive);
* backward gives finite gradients for the prediction;
* a target whose batch size differs from the prediction's raises a ``ValueError`` (``LossInputError``
  is one), except for metric losses;
* metric losses are called as ``loss(embeddings, labels)``; a one-sample batch (no pair, no triplet)
  gives 0 that still backpropagates; a batch where every label is unique gives a finite loss that
  backpropagates, and 0 if the loss declares ``tuple_kind = "triplet"`` (there is no triplet without a
  positive, while a pair loss may still push the negative pairs apart).

Losses with a ``prepare(*, targets, num_classes)`` hook get it called first with the batch's targets,
as the training pipeline calls it with the training set's. Losses declaring
``binary_target_encoding = "plus_minus_one"`` get binary targets as ±1 instead of 0/1.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lossforge import build_loss, build_miner, list_losses, list_miners, loss_info, miner_info
from lossforge.losses.base import TASKS
from lossforge.registry import LOSSES, MINERS

REDUCTIONS = ("mean", "sum", "none")


# -- inputs ----------------------------------------------------------------------------------------


def make_inputs(
    task: str,
    *,
    batch: int = 8,
    num_classes: int = 4,
    dim: int = 3,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """A valid ``(prediction, target)`` pair for ``task``; the prediction requires grad.

    ======================  ============================  ======================================
    task                    prediction                    target
    ======================  ============================  ======================================
    ``"regression"``        ``(batch, dim)``              ``(batch, dim)``, same dtype
    ``"binary"``            scores ``(batch,)``           {0, 1} in ``dtype``, both classes present
    ``"multiclass"``        logits ``(batch, C)``         int64 indices, every class present if it fits
    ``"multilabel"``        logits ``(batch, C)``         {0, 1} in ``dtype``
    ``"metric"``            embeddings ``(batch, dim)``   int64 labels, >= 2 classes of >= 2 members
    ======================  ============================  ======================================

    Example:
        >>> embeddings, labels = make_inputs("metric", batch=6, num_classes=3)
        >>> embeddings.shape, labels.bincount().tolist()
        (torch.Size([6, 3]), [2, 2, 2])
    """
    if task not in TASKS:
        raise ValueError(f"make_inputs: expected `task` in {list(TASKS)}, got {task!r}")
    if task == "metric" and (batch < 4 or num_classes < 2):
        raise ValueError(f"make_inputs: metric inputs need batch >= 4 and num_classes >= 2, got {batch}, {num_classes}")
    if batch < 2:
        raise ValueError(f"make_inputs: expected `batch` >= 2, got {batch}")
    generator = torch.Generator().manual_seed(seed)

    def shuffled_classes(count: int) -> Tensor:
        # Round-robin labels, shuffled: every class gets batch // count or one more members.
        return (torch.arange(batch) % count)[torch.randperm(batch, generator=generator)]

    if task == "regression":
        prediction = torch.randn(batch, dim, generator=generator, dtype=dtype)
        target = torch.randn(batch, dim, generator=generator, dtype=dtype)
    elif task == "binary":
        prediction = torch.randn(batch, generator=generator, dtype=dtype)
        target = shuffled_classes(2).to(dtype)
    elif task == "multiclass":
        prediction = torch.randn(batch, num_classes, generator=generator, dtype=dtype)
        target = shuffled_classes(num_classes)
    elif task == "multilabel":
        prediction = torch.randn(batch, num_classes, generator=generator, dtype=dtype)
        target = (torch.rand(batch, num_classes, generator=generator) < 0.5).to(dtype)
    else:  # metric: at most batch // 2 classes, so each has at least two members
        prediction = torch.randn(batch, dim, generator=generator, dtype=dtype)
        target = shuffled_classes(min(num_classes, batch // 2))
    return prediction.requires_grad_(True), target


# -- names, for pytest.mark.parametrize ------------------------------------------------------------


def loss_names(pattern: str = "*", *, distribution: str | None = None) -> list[str]:
    """Registered loss names matching ``pattern``, optionally only those a given package provides.

    Example:
        >>> loss_names("*cross_entropy", distribution="lossforge")
        ['cross_entropy', 'weighted_cross_entropy']
    """
    return [name for name in list_losses(pattern) if _provided_by(loss_info(name).distribution, distribution)]


def miner_names(pattern: str = "*", *, distribution: str | None = None) -> list[str]:
    """Registered miner names matching ``pattern``, optionally only those a given package provides."""
    return [name for name in list_miners(pattern) if _provided_by(miner_info(name).distribution, distribution)]


def _provided_by(actual: str | None, wanted: str | None) -> bool:
    # Distribution names compare the way pip compares them: case, "-", "_" and "." do not matter.
    return wanted is None or _normalize(actual or "") == _normalize(wanted)


def _normalize(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


# -- losses ----------------------------------------------------------------------------------------


def check_loss(
    loss: str | type[nn.Module],
    *,
    params: Mapping[str, Any] | None = None,
    tasks: tuple[str, ...] | None = None,
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
) -> None:
    """Check a loss against the contract (see the module docstring); raise ``AssertionError`` if not.

    Args:
        loss: a registry name (built with :func:`lossforge.build_loss`) or a loss class.
        params: constructor parameters other than ``reduction``, to check a non-default configuration.
        tasks: check only these of the declared tasks (a configuration may fit only one, e.g. focal
            with a per-class ``alpha``); default: all of them.
        dtypes: the floating dtypes to run in.

    Example:
        >>> check_loss("huber", params={"delta": 0.5})
    """
    cls, label = _resolve(loss, LOSSES, "loss")
    params = dict(params or {})
    _check_signature(cls, label)
    declared = getattr(cls, "tasks", None)
    _expect(
        isinstance(declared, tuple) and bool(declared) and all(task in TASKS for task in declared),
        f"{label}: `tasks` must be a non-empty tuple drawn from {list(TASKS)}, got {declared!r}",
    )
    if tasks is None:
        tasks = declared
    elif any(task not in declared for task in tasks):
        raise ValueError(f"check_loss: {label} declares tasks {declared}, asked to check {tasks}")

    def build(reduction: str) -> nn.Module:
        if isinstance(loss, str):
            return build_loss(loss, reduction=reduction, **params)
        return cls(reduction=reduction, **params)

    for task in tasks:
        for dtype in dtypes:
            where = f"{label} [task={task}, dtype={dtype}]"
            if task == "metric":
                _check_metric_loss(build, where, dtype)
            else:
                _check_supervised_loss(build, cls, task, where, dtype)


def _check_supervised_loss(
    build: Callable[[str], nn.Module], cls: type, task: str, where: str, dtype: torch.dtype
) -> None:
    num_classes = 4
    prediction, target = make_inputs(task, num_classes=num_classes, dtype=dtype)
    if task == "binary" and getattr(cls, "binary_target_encoding", None) == "plus_minus_one":
        target = 2 * target - 1
    prepare_classes = {"binary": 2, "regression": prediction.shape[-1]}.get(task, num_classes)
    outputs: dict[str, Tensor] = {}
    losses: dict[str, nn.Module] = {}
    for reduction in REDUCTIONS:
        loss = build(reduction)
        prepare = getattr(loss, "prepare", None)
        if callable(prepare):
            prepare(targets=target, num_classes=prepare_classes)
        expected_shape = (prediction.shape[0],) if reduction == "none" else ()
        outputs[reduction] = _run(loss, prediction, target, f"{where} reduction={reduction!r}", expected_shape)
        losses[reduction] = loss
    _check_reductions(outputs, losses["mean"], where, dtype)
    if getattr(losses["mean"], "mean_is_weighted", False):
        repeated = losses["mean"](torch.cat([prediction, prediction]), torch.cat([target, target])).detach()
        _expect_close(
            repeated,
            outputs["mean"],
            dtype,
            f"{where}: weighted 'mean' changed when the batch was repeated twice, so it is not a weighted mean",
        )
    try:
        losses["mean"](prediction.detach(), target[:-1])
    except ValueError:
        pass
    except Exception as error:
        raise AssertionError(
            f"{where}: a target of the wrong batch size raised {type(error).__name__}: {error}; "
            f"expected a ValueError such as lossforge.losses.base.LossInputError"
        ) from error
    else:
        raise AssertionError(
            f"{where}: accepted a target of shape {tuple(target[:-1].shape)} for a prediction of shape "
            f"{tuple(prediction.shape)}; expected a ValueError"
        )


def _check_metric_loss(build: Callable[[str], nn.Module], where: str, dtype: torch.dtype) -> None:
    embeddings, labels = make_inputs("metric", dtype=dtype)
    outputs, losses = {}, {}
    for reduction in REDUCTIONS:
        loss = build(reduction)
        expected_shape = None if reduction == "none" else ()  # None: any 1-D shape
        outputs[reduction] = _run(loss, embeddings, labels, f"{where} reduction={reduction!r}", expected_shape)
        losses[reduction] = loss
    _check_reductions(outputs, losses["mean"], where, dtype)
    # Unique labels: no positive pair, hence no triplet; a pair loss may still push negatives apart.
    unique = torch.arange(embeddings.shape[0])
    needs_positive = getattr(losses["mean"], "tuple_kind", None) == "triplet"
    for reduction in ("mean", "sum"):
        context = f"{where} reduction={reduction!r}, every label unique"
        output = _run(losses[reduction], embeddings, unique, context, ())
        if needs_positive:
            _expect(output.item() == 0, f"{context}: expected 0 without any triplet, got {output}")
        # One sample: no pair and no triplet at all (a last, short batch can look like this).
        context = f"{where} reduction={reduction!r}, a single sample"
        output = _run(losses[reduction], embeddings[:1], labels[:1], context, ())
        _expect(output.item() == 0, f"{context}: expected 0 without any pair or triplet, got {output}")


def _run(
    loss: nn.Module, prediction: Tensor, target: Tensor, where: str, expected_shape: tuple[int, ...] | None
) -> Tensor:
    """Forward + backward on a fresh leaf; check dtype, shape, finiteness and gradients; return the output."""
    leaf = prediction.detach().clone().requires_grad_(True)
    output = loss(leaf, target)
    _expect(isinstance(output, Tensor), f"{where}: returned {type(output).__name__}, expected a Tensor")
    _expect(output.dtype == leaf.dtype, f"{where}: output dtype {output.dtype}, input dtype {leaf.dtype}")
    if expected_shape is None:
        _expect(output.dim() == 1, f"{where}: 'none' must be 1-D (per pair or triplet), got {output.shape}")
    else:
        _expect(
            tuple(output.shape) == expected_shape,
            f"{where}: output shape {tuple(output.shape)}, expected {expected_shape}",
        )
    _expect(bool(torch.isfinite(output).all()), f"{where}: output is not finite: {output}")
    _expect(output.requires_grad, f"{where}: output is detached from the prediction, it cannot train")
    output.sum().backward()
    _expect(leaf.grad is not None, f"{where}: backward left the prediction without a gradient")
    _expect(bool(torch.isfinite(leaf.grad).all()), f"{where}: gradient is not finite: {leaf.grad}")
    return output.detach()


def _check_reductions(outputs: dict[str, Tensor], mean_loss: nn.Module, where: str, dtype: torch.dtype) -> None:
    none, total, mean = outputs["none"], outputs["sum"], outputs["mean"]
    _expect_close(total, none.sum(), dtype, f"{where}: 'sum' {total} != 'none'.sum() {none.sum()}")
    if not getattr(mean_loss, "mean_is_weighted", False):
        if none.numel():
            _expect_close(mean, none.mean(), dtype, f"{where}: 'mean' {mean} != 'none'.mean() {none.mean()}")
        return
    if total.abs() > 1e-12:
        _expect(bool(total / mean > 0), f"{where}: weighted 'mean' {mean} and 'sum' {total} differ in sign")


# -- miners ----------------------------------------------------------------------------------------


def check_miner(miner: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> None:
    """Check a miner against the contract; raise ``AssertionError`` if it breaks it.

    The miner is called as ``miner(embeddings, labels)`` on :func:`make_inputs` ``("metric")`` in float32
    and float64, and on a batch where every label is unique. It must return int64 1-D index tensors that
    do not require grad: ``(anchor, positive, anchor, negative)`` for ``tuple_kind = "pair"`` or
    ``(anchor, positive, negative)`` for ``"triplet"``; indices in range, positives sharing the anchor's
    label at a different index, negatives with a different label.

    Args:
        miner: a registry name (built with :func:`lossforge.build_miner`) or a miner class.
        params: constructor parameters.
    """
    cls, label = _resolve(miner, MINERS, "miner")
    _check_signature(cls, label, needs_reduction=False)
    tuple_kind = getattr(cls, "tuple_kind", None)
    _expect(
        tuple_kind in ("pair", "triplet"),
        f"{label}: `tuple_kind` must be 'pair' or 'triplet', got {tuple_kind!r}",
    )
    params = dict(params or {})
    instance = build_miner(miner, **params) if isinstance(miner, str) else cls(**params)
    for dtype in (torch.float32, torch.float64):
        embeddings, labels = make_inputs("metric", dtype=dtype)
        for batch_labels, case in ((labels, "a batch"), (torch.arange(labels.numel()), "unique labels")):
            where = f"{label} [{tuple_kind}, dtype={dtype}, {case}]"
            _check_tuples(instance(embeddings, batch_labels), batch_labels, tuple_kind, where)


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


# -- helpers ---------------------------------------------------------------------------------------


def _resolve(component: Any, registry: Any, kind: str) -> tuple[type, str]:
    if isinstance(component, str):
        return registry.load(component), f"{kind} {component!r}"
    if inspect.isclass(component) and issubclass(component, nn.Module):
        return component, f"{kind} {component.__qualname__}"
    raise TypeError(
        f"check_{kind}: expected a registry name or an nn.Module subclass, got {component!r} (the kit "
        f"builds one instance per reduction; pass the class and `params=` for a non-default configuration)"
    )


def _check_signature(cls: type, label: str, *, needs_reduction: bool = True) -> None:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue  # nn.Module's own (*args, **kwargs) when a class has no __init__; never parameters
        _expect(
            parameter.kind is parameter.KEYWORD_ONLY,
            f"{label}: constructor parameter {parameter.name!r} must be keyword-only (put `*,` first)",
        )
        _expect(
            parameter.default is not parameter.empty,
            f"{label}: constructor parameter {parameter.name!r} needs a default, so that "
            f"build_loss(name) works with no parameters",
        )
        _expect(
            parameter.annotation is not parameter.empty,
            f"{label}: constructor parameter {parameter.name!r} needs a type annotation (configuration "
            f"overrides are type-checked against it)",
        )
    if needs_reduction:
        _expect(
            any(parameter.name == "reduction" for parameter in parameters),
            f"{label}: the constructor must take `reduction`",
        )


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _expect_close(actual: Tensor, expected: Tensor, dtype: torch.dtype, message: str) -> None:
    tolerance = 1e-9 if dtype == torch.float64 else 1e-4
    _expect(bool(torch.allclose(actual, expected, rtol=tolerance, atol=tolerance)), message)
