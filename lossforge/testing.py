"""The contract kit: every promise of :mod:`lossforge.contract`, as named checks a plugin author can run.

Each check is a plain function that raises ``AssertionError`` with a message naming the component, the
task, reduction and dtype where it matters, and the promise it broke; nothing here needs pytest. The kit
checks exactly the :class:`~lossforge.contract.LossPlugin` / :class:`~lossforge.contract.MinerPlugin`
Protocols, through the same adapter and the same call path the training module uses
(:meth:`lossforge.training.module.LossTask.loss_value`), so a component that passes the kit trains.

A plugin's whole contract test, one pytest id per check (``test_contract[my_loss-check_reductions]``)::

    from lossforge.testing import parametrize_checks

    @parametrize_checks(distribution="my-plugin")
    def test_contract(check):
        check()

or, for one component, ``check_loss("my_loss")`` / ``check_miner("my_miner")`` (stops at the first
failure), or from the shell ``lossforge check my-plugin`` (a verdict per component).

Loss checks (:data:`LOSS_CHECKS`), for every task the loss declares and every dtype and reduction:

* ``check_declarations`` — ``tasks`` and the optional attributes hold values the contract allows;
* ``check_constructor`` — keyword-only parameters, each with a default and a type annotation, including
  ``reduction``; the loss builds with nothing but ``reduction`` given;
* ``check_outputs`` — finite, in the prediction's dtype; ``"none"`` is per sample ``(N,)`` (any 1-D shape
  for metric losses: per pair or triplet), ``"mean"``/``"sum"`` are scalars; attached to the graph, with
  finite gradients;
* ``check_reductions`` — ``"sum"`` equals ``"none".sum()``; ``"mean"`` equals ``"none".mean()``, or for
  ``mean_is_weighted = True`` (``"none"`` is :math:`w_i \\ell_i`, ``"mean"`` is :math:`\\sum_i w_i \\ell_i /
  \\sum_i w_i`) a weighted mean: unchanged when the batch is repeated, with the sign of the sum;
* ``check_bad_targets`` — a target whose batch size differs from the prediction's raises a
  ``ValueError`` (supervised tasks);
* ``check_degenerate_batches`` — metric losses: a one-sample batch gives 0 that backpropagates; all labels
  unique gives a finite loss, 0 for ``tuple_kind = "triplet"``;
* ``check_trains`` — called the way lossforge trains (``prepare`` hook, target encoding, told its targets
  were validated), one optimizer step moves a model's parameters and the value is the one of a loss that
  scans its targets; a loss that counts tuples reports ``0 <= active <= tuples``;
* ``check_learnable`` — a loss with parameters of its own once prepared (class proxies): the same seed
  makes the same parameters, each gets a finite non-zero gradient, a ``state_dict`` round trip into a
  fresh instance restores them, and trained as lossforge trains them (their own optimizer group) the loss
  falls on the toy problem and they move; nothing to check for a loss without parameters;
* ``check_search_space`` — the declared ``search_space`` is valid (read by
  :func:`lossforge.contract.search_space`), every default lies inside its prior (a ``None`` default is
  allowed), and values drawn from it — each bound, the midpoint, every choice, one parameter at a time,
  then all at their low and all at their high ends — build a loss with finite outputs and gradients.

Miner checks (:data:`MINER_CHECKS`): ``check_declarations``, ``check_constructor``, ``check_tuples``
(int64 1-D index tensors, not requiring grad, in range; positives share the anchor's label at another
index, negatives do not), ``check_unique_labels`` (no positive pair, still valid tuples),
``check_feeds_a_loss`` (a lossforge loss of its tuple kind trains on its tuples) and
``check_search_space`` (as for losses; values drawn from the space build a miner with valid tuples).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from lossforge import build_loss, build_miner, list_losses, list_miners, loss_info, miner_info
from lossforge.contract import (
    TASKS,
    ContractError,
    Prior,
    Task,
    loss_parameters,
    loss_traits,
    miner_traits,
    normalize_distribution,
    prepare_loss,
    search_space,
    set_scan_targets,
    tuple_counts,
)
from lossforge.registry import LOSSES, MINERS
from lossforge.tasks import spec_for

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
    """A valid ``(prediction, target)`` pair for ``task`` (its ``TaskSpec.example_inputs``); the prediction
    requires grad.

    ==============  ============================  ======================================
    task            prediction                    target
    ==============  ============================  ======================================
    regression      ``(batch, dim)``              ``(batch, dim)``, same dtype
    binary          scores ``(batch,)``           {0, 1} in ``dtype``, both classes present
    multiclass      logits ``(batch, C)``         int64 indices, every class present if it fits
    multilabel      logits ``(batch, C)``         {0, 1} in ``dtype``
    metric          embeddings ``(batch, dim)``   int64 labels, >= 2 classes of >= 2 members
    ==============  ============================  ======================================

    Example:
        >>> embeddings, labels = make_inputs(Task.METRIC, batch=6, num_classes=3)
        >>> embeddings.shape, labels.bincount().tolist()
        (torch.Size([6, 3]), [2, 2, 2])
    """
    if task not in TASKS:
        raise ValueError(f"make_inputs: expected `task` in {[str(t) for t in TASKS]}, got {task!r}")
    if spec_for(task).embedding and (batch < 4 or num_classes < 2):
        raise ValueError(f"make_inputs: metric inputs need batch >= 4 and num_classes >= 2, got {batch}, {num_classes}")
    if batch < 2:
        raise ValueError(f"make_inputs: expected `batch` >= 2, got {batch}")
    generator = torch.Generator().manual_seed(seed)
    prediction, target = spec_for(task).example_inputs(
        batch=batch, num_classes=num_classes, dim=dim, dtype=dtype, generator=generator
    )
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
    return wanted is None or normalize_distribution(actual or "") == normalize_distribution(wanted)


# -- the checks as values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One promise about one component: call it to check it (``AssertionError`` if broken)."""

    component: str  # the registry name, or the class's qualified name
    name: str  # the check function's name, e.g. "check_reductions"
    run: Callable[[], None]

    def __call__(self) -> None:
        try:
            self.run()
        except AssertionError:
            raise
        except Exception as error:  # a component that crashes a check breaks its promise too
            raise AssertionError(f"{self.id}: raised {type(error).__name__}: {error}") from error

    @property
    def id(self) -> str:
        """``"<component>-<check>"``, a pytest id."""
        return f"{self.component}-{self.name}"


@dataclass(frozen=True)
class _Loss:
    """What a loss check needs: the class, a builder per reduction, and which tasks and dtypes to run."""

    cls: type
    label: str
    build: Callable[..., Any]  # (reduction, **overrides) -> a loss
    tasks: tuple[Task, ...]
    dtypes: tuple[torch.dtype, ...]


@dataclass(frozen=True)
class _Miner:
    cls: type
    label: str
    build: Callable[..., Any]  # (**overrides) -> a miner


def loss_checks(
    loss: str | type[nn.Module],
    *,
    params: Mapping[str, Any] | None = None,
    tasks: tuple[str, ...] | None = None,
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
) -> list[Check]:
    """Every loss check (:data:`LOSS_CHECKS`) bound to ``loss``.

    Args:
        loss: a registry name (built with :func:`lossforge.build_loss`) or a loss class.
        params: constructor parameters other than ``reduction``, to check a non-default configuration.
        tasks: check only these of the declared tasks (a configuration may fit only one, e.g. focal
            with a per-class ``alpha``); default: all of them.
        dtypes: the floating dtypes to run in.
    """
    cls, label = _resolve(loss, LOSSES, "loss")
    options = dict(params or {})

    def build(reduction: str, **overrides: Any) -> nn.Module:
        settings = {**options, **overrides}  # a value drawn from the search space replaces a given one
        if isinstance(loss, str):
            return build_loss(loss, reduction=reduction, **settings)
        return cls(reduction=reduction, **settings)

    try:
        declared = loss_traits(cls).tasks
    except ContractError:
        declared = ()  # check_declarations reports it; the other checks have no task to run
    if tasks is not None and any(task not in declared for task in tasks):
        raise ValueError(f"loss_checks: {label} declares tasks {declared}, asked to check {tasks}")
    subject = _Loss(cls, label, build, tuple(Task(t) for t in tasks) if tasks else declared, dtypes)
    return [Check(_short(loss), check.__name__, _bind(check, subject)) for check in LOSS_CHECKS]


def miner_checks(miner: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> list[Check]:
    """Every miner check (:data:`MINER_CHECKS`) bound to ``miner`` (a registry name or a miner class)."""
    cls, label = _resolve(miner, MINERS, "miner")
    options = dict(params or {})

    def build(**overrides: Any) -> nn.Module:
        settings = {**options, **overrides}
        return build_miner(miner, **settings) if isinstance(miner, str) else cls(**settings)

    subject = _Miner(cls, label, build)
    return [Check(_short(miner), check.__name__, _bind(check, subject)) for check in MINER_CHECKS]


def check_loss(loss: str | type[nn.Module], **options: Any) -> None:
    """Run every loss check on ``loss``; raise the first ``AssertionError``. Options: :func:`loss_checks`.

    Example:
        >>> check_loss("huber", params={"delta": 0.5})
    """
    for check in loss_checks(loss, **options):
        check()


def check_miner(miner: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> None:
    """Run every miner check on ``miner``; raise the first ``AssertionError``."""
    for check in miner_checks(miner, params=params):
        check()


def component_checks(*, distribution: str | None = None) -> list[Check]:
    """The checks of every registered loss and miner (of one ``distribution``, if given)."""
    losses = [check for name in loss_names(distribution=distribution) for check in loss_checks(name)]
    return losses + [check for name in miner_names(distribution=distribution) for check in miner_checks(name)]


def parametrize_checks(
    checks: Iterable[Check] | None = None, *, distribution: str | None = None
) -> Callable[[Callable[..., Any]], Any]:
    """``pytest.mark.parametrize("check", …)`` over ``checks`` (default: :func:`component_checks` of
    ``distribution``), one test id per component and check."""
    import pytest  # only the pytest helper needs pytest

    selected = list(checks) if checks is not None else component_checks(distribution=distribution)
    return pytest.mark.parametrize("check", selected, ids=[check.id for check in selected])


# -- loss checks ---------------------------------------------------------------------------------------


def check_declarations(subject: _Loss | _Miner) -> None:
    """The class declares what the contract requires, with values it allows."""
    try:
        loss_traits(subject.cls) if isinstance(subject, _Loss) else miner_traits(subject.cls)
    except ContractError as error:
        raise AssertionError(f"{subject.label}: {error.rule}") from None
    _expect(
        inspect.isclass(subject.cls) and issubclass(subject.cls, nn.Module),
        f"{subject.label}: must be a torch.nn.Module subclass",
    )


def check_constructor(subject: _Loss | _Miner) -> None:
    """Keyword-only parameters with defaults and annotations (a loss: including ``reduction``), and the
    component builds with its defaults."""
    parameters = list(inspect.signature(subject.cls).parameters.values())
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue  # nn.Module's own (*args, **kwargs) when a class has no __init__; never parameters
        where = f"{subject.label}: constructor parameter {parameter.name!r}"
        _expect(parameter.kind is parameter.KEYWORD_ONLY, f"{where} must be keyword-only (put `*,` first)")
        _expect(
            parameter.default is not parameter.empty,
            f"{where} needs a default, so that it builds by name with no parameters",
        )
        _expect(
            parameter.annotation is not parameter.empty,
            f"{where} needs a type annotation (configuration overrides are type-checked against it)",
        )
    if isinstance(subject, _Loss):
        _expect(
            any(parameter.name == "reduction" for parameter in parameters),
            f"{subject.label}: the constructor must take `reduction`",
        )
        subject.build("mean")
    else:
        subject.build()


def check_outputs(subject: _Loss) -> None:
    """Dtype, shape, finiteness and gradients of every reduction, task and dtype."""
    for task, dtype, where in _cases(subject):
        prediction, target = _inputs(subject, task, dtype)
        for reduction in REDUCTIONS:
            expected: tuple[int, ...] | None = (prediction.shape[0],) if reduction == "none" else ()
            if spec_for(task).embedding and reduction == "none":
                expected = None  # per pair or triplet: any 1-D shape
            loss = _built(subject, reduction, prediction, target, task)
            _run(loss, prediction, target, f"{where} {reduction=}", expected)


def check_reductions(subject: _Loss) -> None:
    """``"sum"`` is ``"none".sum()``; ``"mean"`` is ``"none".mean()`` or a true weighted mean."""
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


def check_bad_targets(subject: _Loss) -> None:
    """A target whose batch size differs from the prediction's raises a ``ValueError``."""
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


def check_degenerate_batches(subject: _Loss) -> None:
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


def check_trains(subject: _Loss) -> None:
    """Called the way lossforge trains (float32, the ``prepare`` hook, targets encoded by the task and
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


def check_search_space(subject: _Loss | _Miner) -> None:
    """The declared ``search_space`` is valid, holds every default (a ``None`` default, "inherit" or "off",
    is allowed), and what a tuner may draw from it builds a component that keeps its core promises: finite
    outputs and gradients (a loss) or valid tuples (a miner)."""
    try:
        space = search_space(subject.cls)
    except ContractError as error:
        raise AssertionError(f"{subject.label}: {error.rule}") from None
    for parameter in inspect.signature(subject.cls).parameters.values():
        prior = space.get(parameter.name)
        if prior is None or parameter.default is None or parameter.default is parameter.empty:
            continue  # a missing default is check_constructor's to report
        _expect(
            prior.contains(parameter.default),
            f"{subject.label}: the default {parameter.name}={parameter.default!r} lies outside its prior "
            f"{prior}; widen the prior or change the default, so that tuning can find it",
        )
    for values in _draws(space):
        drawn = ", ".join(f"{name}={value!r}" for name, value in values.items())
        if isinstance(subject, _Loss):
            _check_drawn_loss(subject, values, f"drawn from its search space: {drawn}")
        else:
            _check_drawn_miner(subject, values, f"drawn from its search space: {drawn}")


def check_learnable(subject: _Loss) -> None:
    """A loss with parameters of its own once prepared (class proxies, a weight matrix; nothing to check for
    the others): the same seed makes the same parameters (so DDP processes start equal); each gets a finite,
    non-zero gradient; a ``state_dict`` round trip into a fresh, differently seeded instance restores them
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


def _check_learning(subject: _Loss, task: Task, where: str) -> None:
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


#: Every loss check, in the order they run.
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


# -- miner checks ----------------------------------------------------------------------------------------


def check_tuples(subject: _Miner) -> None:
    """Valid index tuples for a batch, in float32 and float64."""
    miner = subject.build()
    kind = miner_traits(miner).tuple_kind
    for dtype in (torch.float32, torch.float64):
        embeddings, labels = make_inputs(Task.METRIC, dtype=dtype)
        _check_tuples(miner(embeddings, labels), labels, kind, f"{subject.label} [{kind}, dtype={dtype}, a batch]")


def check_unique_labels(subject: _Miner) -> None:
    """Valid (positive-free) tuples when every label is unique."""
    miner = subject.build()
    kind = miner_traits(miner).tuple_kind
    embeddings, labels = make_inputs(Task.METRIC)
    unique = torch.arange(labels.numel())
    _check_tuples(miner(embeddings, unique), unique, kind, f"{subject.label} [{kind}, unique labels]")


def check_feeds_a_loss(subject: _Miner) -> None:
    """A lossforge loss of the miner's tuple kind trains on its tuples, through the training module."""
    from lossforge.training.module import LossTask

    miner = subject.build()
    kind = miner_traits(miner).tuple_kind
    loss = build_loss("contrastive" if kind == "pair" else "triplet")
    embeddings, labels = make_inputs(Task.METRIC)
    module = LossTask(model=nn.Identity(), loss=loss, task=Task.METRIC, num_outputs=embeddings.shape[1], miner=miner)
    value = module.loss_value(embeddings, labels, mine=True)
    _expect(bool(torch.isfinite(value)), f"{subject.label}: a {kind} loss on its tuples is not finite: {value}")
    value.backward()
    _expect(embeddings.grad is not None, f"{subject.label}: a {kind} loss on its tuples gives no gradient")


#: Every miner check, in the order they run.
MINER_CHECKS = (
    check_declarations,
    check_constructor,
    check_tuples,
    check_unique_labels,
    check_feeds_a_loss,
    check_search_space,
)


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


def _bind(check: Callable[[Any], None], subject: _Loss | _Miner) -> Callable[[], None]:
    return lambda: check(subject)


def _short(component: str | type) -> str:
    return component if isinstance(component, str) else component.__qualname__


def _resolve(component: Any, registry: Any, kind: str) -> tuple[type, str]:
    if isinstance(component, str):
        return registry.load(component), f"{kind} {component!r}"
    if inspect.isclass(component) and issubclass(component, nn.Module):
        return component, f"{kind} {component.__qualname__}"
    raise TypeError(
        f"check_{kind}: expected a registry name or an nn.Module subclass, got {component!r} (the kit "
        f"builds one instance per reduction; pass the class and `params=` for a non-default configuration)"
    )


def _cases(subject: _Loss) -> Iterable[tuple[Task, torch.dtype, str]]:
    for task in subject.tasks:
        for dtype in subject.dtypes:
            yield task, dtype, f"{subject.label} [task={task}, dtype={dtype}]"


def _inputs(subject: _Loss, task: Task, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Toy inputs, the target encoded as the training module hands it to this loss."""
    prediction, target = make_inputs(task, dtype=dtype)
    encoding = loss_traits(subject.cls).binary_target_encoding
    target = spec_for(task).loss_target(target, encoding=encoding)
    if target.is_floating_point():
        target = target.to(dtype)
    return prediction, target


def _num_classes(task: Task, prediction: Tensor, target: Tensor) -> int:
    """What the training pipeline passes to ``prepare``: the dataset's ``num_outputs`` (classes, labels,
    target columns; 1 for binary), or the number of classes for a metric loss."""
    if spec_for(task).embedding:
        return int(target.max()) + 1
    return 1 if prediction.dim() == 1 else int(prediction.shape[-1])


def _built(
    subject: _Loss, reduction: str, prediction: Tensor, target: Tensor, task: Task, *, seed: int = 0, **overrides: Any
) -> nn.Module:
    """The loss with ``reduction`` (and ``overrides`` of its parameters), prepared the way the training
    pipeline prepares it, under torch seed ``seed`` (the global generator's state is kept): a loss whose
    ``prepare`` draws parameters (proxies) draws the same ones for every reduction, as a seeded run does."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _prepared(subject, reduction, prediction, target, task, **overrides)


def _prepared(
    subject: _Loss, reduction: str, prediction: Tensor, target: Tensor, task: Task, **overrides: Any
) -> nn.Module:
    loss = subject.build(reduction, **overrides)
    prepare_loss(loss, targets=target, num_classes=_num_classes(task, prediction, target), **_width(task, prediction))
    return loss


def _width(task: Task, prediction: Tensor) -> dict[str, int]:
    """``embedding_dim`` as the training pipeline passes it to ``prepare``: the embeddings' width (metric)."""
    return {"embedding_dim": int(prediction.shape[-1])} if spec_for(task).embedding else {}


def _draws(space: Mapping[str, Prior]) -> list[dict[str, Any]]:
    """Deterministic draws from a search space: each probe of each parameter (the others at their
    defaults), then, where parameters can interact, all at their lowest probes and all at their highest."""
    draws = [{name: value} for name, prior in space.items() for value in prior.probes()]
    if len(space) > 1:
        draws.append({name: prior.probes()[0] for name, prior in space.items()})
        draws.append({name: prior.probes()[-1] for name, prior in space.items()})
    return draws


def _check_drawn_loss(subject: _Loss, values: Mapping[str, Any], drawn: str) -> None:
    for task, dtype, where in _cases(subject):
        prediction, target = _inputs(subject, task, dtype)
        try:
            loss = _built(subject, "mean", prediction, target, task, **values)
        except Exception as error:
            raise AssertionError(f"{where} {drawn}: building it raised {type(error).__name__}: {error}") from error
        _run(loss, prediction, target, f"{where} {drawn}", ())


def _check_drawn_miner(subject: _Miner, values: Mapping[str, Any], drawn: str) -> None:
    try:
        miner = subject.build(**values)
    except Exception as error:
        raise AssertionError(f"{subject.label} {drawn}: building it raised {type(error).__name__}: {error}") from error
    kind = miner_traits(miner).tuple_kind
    for dtype in (torch.float32, torch.float64):
        embeddings, labels = make_inputs(Task.METRIC, dtype=dtype)
        _check_tuples(miner(embeddings, labels), labels, kind, f"{subject.label} [{kind}, dtype={dtype}] {drawn}")


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


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _expect_close(actual: Tensor, expected: Tensor, dtype: torch.dtype, message: str) -> None:
    tolerance = 1e-9 if dtype == torch.float64 else 1e-4
    _expect(bool(torch.allclose(actual, expected, rtol=tolerance, atol=tolerance)), message)
