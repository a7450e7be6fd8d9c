"""The contract kit's loss checks ([LOSS_CHECKS][lossforge.testing.losses.LOSS_CHECKS]): outputs, reductions, bad
targets, degenerate batches, training as lossforge trains, learnable parameters and the search space — each a named
function of a [LossSubject][lossforge.testing.losses.LossSubject], bound into [Check][lossforge.testing.common.Check]
values by [loss_checks][lossforge.testing.losses.loss_checks]."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from lossforge.components import list_losses, loss_info
from lossforge.contract import (
    ContractError,
    Task,
    loss_parameters,
    loss_traits,
    prepare_loss,
    set_scan_targets,
    tuple_counts,
)
from lossforge.registry import LOSSES
from lossforge.tasks import spec_for
from lossforge.testing.common import (
    REDUCTIONS,
    Check,
    _bind,
    _expect,
    _expect_close,
    _provided_by,
    _resolve,
    _short,
    check_constructor,
    check_declarations,
    check_search_space,
    make_inputs,
)


@dataclass(frozen=True)
class LossSubject:
    """What a loss check needs: the class, a builder per reduction, and which tasks and dtypes to run."""

    cls: type
    label: str
    build: Callable[..., Any]  # (reduction, **overrides) -> a loss
    tasks: tuple[Task, ...]
    dtypes: tuple[torch.dtype, ...]
    kind: str = "loss"

    def read_traits(self) -> Any:
        return loss_traits(self.cls)

    def check_drawn(self, values: Mapping[str, Any], drawn: str) -> None:
        _check_drawn_loss(self, values, drawn)


def loss_names(pattern: str = "*", *, distribution: str | None = None) -> list[str]:
    """Registered loss names matching `pattern`, optionally only those a given package provides.

    Examples:
        >>> loss_names("*cross_entropy", distribution="lossforge")
        ['cross_entropy', 'weighted_cross_entropy']
    """
    return [name for name in list_losses(pattern) if _provided_by(loss_info(name).distribution, distribution)]


def loss_checks(
    loss: str | type[nn.Module],
    *,
    params: Mapping[str, Any] | None = None,
    tasks: tuple[str, ...] | None = None,
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
) -> list[Check]:
    """Every loss check ([LOSS_CHECKS][lossforge.testing.losses.LOSS_CHECKS]) bound to `loss`.

    Args:
        loss: a registry name (built through the registry, as [lossforge.build_loss][lossforge.components.build_loss]
            builds it) or a loss class.
        params: constructor parameters other than `reduction`, to check a non-default configuration.
        tasks: check only these of the declared tasks (a configuration may fit only one, e.g. focal
            with a per-class `alpha`); default: all of them.
        dtypes: the floating dtypes to run in.
    """
    cls, label = _resolve(loss, LOSSES, "loss")
    options = dict(params or {})

    def build(reduction: str, **overrides: Any) -> nn.Module:
        settings = {**options, **overrides}  # a value drawn from the search space replaces a given one
        if isinstance(loss, str):
            return LOSSES.build(loss, reduction=reduction, **settings)
        return cls(reduction=reduction, **settings)

    try:
        declared = loss_traits(cls).tasks
    except ContractError:
        declared = ()  # check_declarations reports it; the other checks have no task to run
    if tasks is not None and any(task not in declared for task in tasks):
        raise ValueError(f"loss_checks: {label} declares tasks {declared}, asked to check {tasks}")
    subject = LossSubject(cls, label, build, tuple(Task(t) for t in tasks) if tasks else declared, dtypes)
    return [Check(_short(loss), check.__name__, _bind(check, subject)) for check in LOSS_CHECKS]


def check_loss(loss: str | type[nn.Module], **options: Any) -> None:
    """Run every loss check on `loss`; raise the first `AssertionError`. Options:
    [loss_checks][lossforge.testing.losses.loss_checks].

    Examples:
        >>> check_loss("huber", params={"delta": 0.5})
    """
    for check in loss_checks(loss, **options):
        check()


def check_outputs(subject: LossSubject) -> None:
    """Dtype, shape, finiteness and gradients of every reduction, task and dtype."""
    for task, dtype, where in _cases(subject):
        prediction, target = _inputs(subject, task, dtype)
        for reduction in REDUCTIONS:
            expected: tuple[int, ...] | None = (prediction.shape[0],) if reduction == "none" else ()
            if spec_for(task).embedding and reduction == "none":
                expected = None  # per pair or triplet: any 1-D shape
            loss = _built(subject, reduction, prediction, target, task)
            _run(loss, prediction, target, f"{where} {reduction=}", expected)


def check_reductions(subject: LossSubject) -> None:
    """`"sum"` is `"none".sum()`; `"mean"` is `"none".mean()` or a true weighted mean."""
    for task, dtype, where in _cases(subject):
        prediction, target = _inputs(subject, task, dtype)
        losses = {}
        for reduction in REDUCTIONS:
            torch.manual_seed(0)  # a learnable loss draws its parameters in `prepare`: the same for each reduction
            losses[reduction] = _built(subject, reduction, prediction, target, task)
        outputs = {reduction: _value(loss, prediction, target) for reduction, loss in losses.items()}
        none, total, mean = outputs["none"], outputs["sum"], outputs["mean"]
        _expect_close(total, none.sum(), dtype, f"{where}: 'sum' {total} != 'none'.sum() {none.sum()}")
        if not loss_traits(losses["mean"]).mean_is_weighted:
            if none.numel():
                _expect_close(mean, none.mean(), dtype, f"{where}: 'mean' {mean} != 'none'.mean() {none.mean()}")
            continue
        repeated = _value(losses["mean"], torch.cat([prediction, prediction]), torch.cat([target, target]))
        _expect_close(
            repeated,
            mean,
            dtype,
            f"{where}: weighted 'mean' changed when the batch was repeated twice, so it is not a weighted mean",
        )
        if total.abs() > 1e-12:
            _expect(bool(total / mean > 0), f"{where}: weighted 'mean' {mean} and 'sum' {total} differ in sign")


def check_bad_targets(subject: LossSubject) -> None:
    """A target whose batch size differs from the prediction's raises a `ValueError`."""
    for task, dtype, where in _cases(subject):
        if spec_for(task).embedding:
            continue  # labels index the embeddings: the degenerate-batch check covers metric losses
        prediction, target = _inputs(subject, task, dtype)
        loss = _built(subject, "mean", prediction, target, task)
        try:
            loss(prediction.detach(), target[:-1])
        except ValueError:
            continue
        except Exception as error:
            raise AssertionError(
                f"{where}: a target of the wrong batch size raised {type(error).__name__}: {error}; "
                f"expected a ValueError such as lossforge.losses.base.LossInputError"
            ) from error
        raise AssertionError(
            f"{where}: accepted a target of shape {tuple(target[:-1].shape)} for a prediction of shape "
            f"{tuple(prediction.shape)}; expected a ValueError"
        )


def check_degenerate_batches(subject: LossSubject) -> None:
    """Metric losses: no pair or triplet in the batch gives 0 (or a finite value) that backpropagates."""
    for task, dtype, where in _cases(subject):
        if not spec_for(task).embedding:
            continue
        embeddings, labels = _inputs(subject, task, dtype)
        unique = torch.arange(embeddings.shape[0])
        for reduction in ("mean", "sum"):
            loss = _built(subject, reduction, embeddings, unique, task)  # a class per sample, prepared so
            context = f"{where} {reduction=}, every label unique"
            output = _run(loss, embeddings, unique, context, ())
            if loss_traits(loss).tuple_kind == "triplet":  # no positive, hence no triplet
                _expect(output.item() == 0, f"{context}: expected 0 without any triplet, got {output}")
            context = f"{where} {reduction=}, a single sample"  # a last, short batch can look like this
            output = _run(loss, embeddings[:1], labels[:1], context, ())
            if not loss_parameters(loss):  # a learnable loss compares a sample with its class proxies: finite
                _expect(output.item() == 0, f"{context}: expected 0 without any pair or triplet, got {output}")


def check_trains(subject: LossSubject) -> None:
    """Called the way lossforge trains (float32, the `prepare` hook, targets encoded by the task and
    trusted), one optimizer step moves a model's parameters; skipping the target scans changes nothing; a
    tuple-counting loss reports consistent counts."""
    from lossforge.training.module import LossTask  # imports Lightning: only this check needs it

    for task in subject.tasks:
        where = f"{subject.label} [task={task}, as lossforge trains]"
        prediction, target = make_inputs(task, dtype=torch.float32)  # the dataset's encoding of targets
        num_outputs = 1 if prediction.dim() == 1 else prediction.shape[1]
        torch.manual_seed(0)
        model = nn.Linear(5, num_outputs)
        loss = subject.build("mean")
        prepare_loss(
            loss, targets=target, num_classes=_num_classes(task, prediction, target), **_width(task, prediction)
        )
        module = LossTask(model=model, loss=loss, task=task, num_outputs=num_outputs)
        features = torch.randn(len(target), 5, generator=torch.Generator().manual_seed(1))
        value = module.loss_value(module(features), target)
        _expect(bool(torch.isfinite(value)), f"{where}: the training loss is not finite: {value}")
        set_scan_targets(loss, True)
        scanned = module.loss_value(module(features), target).detach()
        _expect_close(value.detach(), scanned, torch.float32, f"{where}: skipping the target scans changed the loss")
        _expect(value.requires_grad, f"{where}: the training loss is detached from the model's outputs")
        before = [parameter.detach().clone() for parameter in model.parameters()]
        value.backward()
        torch.optim.SGD(module.parameters(), lr=0.1).step()
        moved = any(not torch.equal(old, new) for old, new in zip(before, model.parameters(), strict=True))
        _expect(moved, f"{where}: one optimizer step left the model unchanged: the loss gives no gradient")
        counts = tuple_counts(loss)
        if counts is not None:
            tuples, active = (int(count) for count in counts)
            _expect(0 <= active <= tuples, f"{where}: last_num_active {active} not in [0, last_num_tuples {tuples}]")


def check_learnable(subject: LossSubject) -> None:
    """A loss with parameters of its own once prepared (class proxies, a weight matrix; nothing to check for
    the others): the same seed makes the same parameters (so DDP processes start equal); each gets a finite,
    non-zero gradient; a `state_dict` round trip into a fresh, differently seeded instance restores them
    and the loss value; trained the way lossforge trains (its parameters in their own optimizer group),
    the loss falls and its parameters move."""
    learnable = set()
    for task, dtype, where in _cases(subject):
        prediction, target = _inputs(subject, task, dtype)
        loss = _built(subject, "mean", prediction, target, task)
        named = {name: parameter for name, parameter in loss.named_parameters() if parameter.requires_grad}
        if not named:
            continue
        learnable.add(task)
        again = dict(_built(subject, "mean", prediction, target, task).named_parameters())
        for name, parameter in named.items():
            _expect(
                name in again and torch.equal(parameter, again[name]),
                f"{where}: parameter {name!r} differs between two builds under the same seed: draw it from "
                f"torch's global generator in `prepare`, so that every DDP process starts with the same one",
            )
        output = loss(prediction.detach(), target)
        output.backward()
        for name, parameter in named.items():
            grad = parameter.grad
            _expect(grad is not None, f"{where}: parameter {name!r} got no gradient: the loss does not use it")
            _expect(
                bool(torch.isfinite(cast(Tensor, grad)).all()), f"{where}: parameter {name!r}'s gradient is not finite"
            )
            _expect(bool(cast(Tensor, grad).abs().sum() > 0), f"{where}: parameter {name!r}'s gradient is all zero")
        fresh = _built(subject, "mean", prediction, target, task, seed=1)
        fresh.load_state_dict(loss.state_dict())
        restored = dict(fresh.named_parameters())
        for name, parameter in named.items():
            _expect(
                name in restored and torch.equal(parameter, restored[name]),
                f"{where}: parameter {name!r} did not survive a state_dict round trip into a fresh instance",
            )
        _expect_close(
            _value(fresh, prediction, target),
            output.detach(),
            dtype,
            f"{where}: after a state_dict round trip the loss gives another value",
        )
    for task in sorted(learnable):
        _check_learning(subject, task, f"{subject.label} [task={task}, as lossforge trains]")


def _check_learning(subject: LossSubject, task: Task, where: str) -> None:
    """The kit's toy problem, trained as lossforge trains: Adam at its default learning rate, the loss's
    parameters in their own group; 30 steps lower the loss and move the loss's parameters."""
    from lossforge.training.module import LossTask  # imports Lightning: only the training checks need it
    from lossforge.training.optim import OptimizerConfig

    prediction, target = make_inputs(task, dtype=torch.float32)
    num_outputs = prediction.shape[1]
    torch.manual_seed(0)
    model = nn.Linear(5, num_outputs)
    loss = _built(subject, "mean", prediction, target, task)
    module = LossTask(
        model=model, loss=cast(Any, loss), task=task, num_outputs=num_outputs, optimizer=OptimizerConfig()
    )
    optimizer = module.configure_optimizers()
    _expect(
        len(optimizer.param_groups) == 2,
        f"{where}: lossforge's optimizer did not give the loss's parameters a group of their own",
    )
    before = [parameter.detach().clone() for parameter in loss_parameters(loss)]
    features = torch.randn(len(target), 5, generator=torch.Generator().manual_seed(1))
    values = []
    for _ in range(30):
        optimizer.zero_grad()
        value = module.loss_value(module(features), target)
        value.backward()
        optimizer.step()
        values.append(value.item())
    _expect(
        all(math.isfinite(value) for value in values) and values[-1] < values[0],
        f"{where}: 30 optimizer steps on the kit's toy problem did not lower the loss: {values[0]} -> {values[-1]}",
    )
    moved = any(not torch.equal(old, new) for old, new in zip(before, loss_parameters(loss), strict=True))
    _expect(moved, f"{where}: 30 optimizer steps left the loss's own parameters unchanged")


LOSS_CHECKS = (
    check_declarations,
    check_constructor,
    check_outputs,
    check_reductions,
    check_bad_targets,
    check_degenerate_batches,
    check_trains,
    check_learnable,
    check_search_space,
)
"""Every loss check, in the order they run."""


def _cases(subject: LossSubject) -> Iterable[tuple[Task, torch.dtype, str]]:
    for task in subject.tasks:
        for dtype in subject.dtypes:
            yield task, dtype, f"{subject.label} [task={task}, dtype={dtype}]"


def _inputs(subject: LossSubject, task: Task, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Toy inputs, the target encoded as the training module hands it to this loss."""
    prediction, target = make_inputs(task, dtype=dtype)
    encoding = loss_traits(subject.cls).binary_target_encoding
    target = spec_for(task).loss_target(target, encoding=encoding)
    if target.is_floating_point():
        target = target.to(dtype)
    return prediction, target


def _num_classes(task: Task, prediction: Tensor, target: Tensor) -> int:
    """What the training pipeline passes to `prepare`: the dataset's `num_outputs` (classes, labels,
    target columns; 1 for binary), or the number of classes for a metric loss."""
    if spec_for(task).embedding:
        return int(target.max()) + 1
    return 1 if prediction.dim() == 1 else int(prediction.shape[-1])


def _built(
    subject: LossSubject,
    reduction: str,
    prediction: Tensor,
    target: Tensor,
    task: Task,
    *,
    seed: int = 0,
    **overrides: Any,
) -> nn.Module:
    """The loss with `reduction` (and `overrides` of its parameters), prepared the way the training
    pipeline prepares it, under torch seed `seed` (the global generator's state is kept): a loss whose
    `prepare` draws parameters (proxies) draws the same ones for every reduction, as a seeded run does."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _prepared(subject, reduction, prediction, target, task, **overrides)


def _prepared(
    subject: LossSubject, reduction: str, prediction: Tensor, target: Tensor, task: Task, **overrides: Any
) -> nn.Module:
    loss = subject.build(reduction, **overrides)
    prepare_loss(loss, targets=target, num_classes=_num_classes(task, prediction, target), **_width(task, prediction))
    return loss


def _width(task: Task, prediction: Tensor) -> dict[str, int]:
    """`embedding_dim` as the training pipeline passes it to `prepare`: the embeddings' width (metric)."""
    return {"embedding_dim": int(prediction.shape[-1])} if spec_for(task).embedding else {}


def _check_drawn_loss(subject: LossSubject, values: Mapping[str, Any], drawn: str) -> None:
    for task, dtype, where in _cases(subject):
        prediction, target = _inputs(subject, task, dtype)
        try:
            loss = _built(subject, "mean", prediction, target, task, **values)
        except Exception as error:
            raise AssertionError(f"{where} {drawn}: building it raised {type(error).__name__}: {error}") from error
        _run(loss, prediction, target, f"{where} {drawn}", ())


def _value(loss: nn.Module, prediction: Tensor, target: Tensor) -> Tensor:
    return loss(prediction.detach(), target).detach()


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
    grad = leaf.grad
    _expect(grad is not None, f"{where}: backward left the prediction without a gradient")
    _expect(bool(torch.isfinite(cast(Tensor, grad)).all()), f"{where}: gradient is not finite: {grad}")
    return output.detach()
