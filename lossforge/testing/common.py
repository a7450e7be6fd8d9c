"""What every check of the contract kit shares: the toy inputs, a check as a value
([Check][lossforge.testing.common.Check]), the component under test ([Subject][lossforge.testing.common.Subject]), and
the checks that read losses and miners alike (declarations, constructor, search space)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from lossforge.contract import TASKS, ContractError, Prior, normalize_distribution, search_space
from lossforge.tasks import spec_for

REDUCTIONS = ("mean", "sum", "none")


class Subject(Protocol):
    """The component a check runs on: its class, a label for messages, a builder, and what is particular to
    its kind (`"loss"` or `"miner"`)."""

    @property
    def kind(self) -> str:
        """`"loss"` or `"miner"`."""
        ...

    @property
    def cls(self) -> type:
        """The component's class."""
        ...

    @property
    def label(self) -> str:
        """How messages name it: `loss 'focal'`."""
        ...

    @property
    def build(self) -> Callable[..., Any]:
        """Build one instance (a loss: `build(reduction, **overrides)`; a miner: `build(**overrides)`)."""
        ...

    def read_traits(self) -> Any:
        """The component's traits as the framework reads them (`ContractError` if it declares them wrong)."""
        ...

    def check_drawn(self, values: Mapping[str, Any], drawn: str) -> None:
        """The core promises of the component built with `values` drawn from its search space."""
        ...


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
    """A valid `(prediction, target)` pair for `task` (its `TaskSpec.example_inputs`); the prediction
    requires grad.

    ==============  ============================  ======================================
    task            prediction                    target
    ==============  ============================  ======================================
    regression      `(batch, dim)`              `(batch, dim)`, same dtype
    binary          scores `(batch,)`           {0, 1} in `dtype`, both classes present
    multiclass      logits `(batch, C)`         int64 indices, every class present if it fits
    multilabel      logits `(batch, C)`         {0, 1} in `dtype`
    metric          embeddings `(batch, dim)`   int64 labels, >= 2 classes of >= 2 members
    ==============  ============================  ======================================

    Examples:
        >>> from lossforge.contract import Task
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


def _provided_by(actual: str | None, wanted: str | None) -> bool:
    return wanted is None or normalize_distribution(actual or "") == normalize_distribution(wanted)


@dataclass(frozen=True)
class Check:
    """One promise about one component: call it to check it (`AssertionError` if broken)."""

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
        """`"<component>-<check>"`, a pytest id."""
        return f"{self.component}-{self.name}"


def check_declarations(subject: Subject) -> None:
    """The class declares what the contract requires, with values it allows."""
    try:
        subject.read_traits()
    except ContractError as error:
        raise AssertionError(f"{subject.label}: {error.rule}") from None
    _expect(
        inspect.isclass(subject.cls) and issubclass(subject.cls, nn.Module),
        f"{subject.label}: must be a torch.nn.Module subclass",
    )


def check_constructor(subject: Subject) -> None:
    """Keyword-only parameters with defaults and annotations (a loss: including `reduction`), and the
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
    if subject.kind == "loss":
        _expect(
            any(parameter.name == "reduction" for parameter in parameters),
            f"{subject.label}: the constructor must take `reduction`",
        )
        subject.build("mean")
    else:
        subject.build()


def check_search_space(subject: Subject) -> None:
    """The declared `search_space` is valid, holds every default (a `None` default, "inherit" or "off",
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
        subject.check_drawn(values, f"drawn from its search space: {drawn}")


# -- helpers ---------------------------------------------------------------------------------------


def _bind(check: Callable[[Any], None], subject: Subject) -> Callable[[], None]:
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


def _draws(space: Mapping[str, Prior]) -> list[dict[str, Any]]:
    """Deterministic draws from a search space: each probe of each parameter (the others at their
    defaults), then, where parameters can interact, all at their lowest probes and all at their highest."""
    draws = [{name: value} for name, prior in space.items() for value in prior.probes()]
    if len(space) > 1:
        draws.append({name: prior.probes()[0] for name, prior in space.items()})
        draws.append({name: prior.probes()[-1] for name, prior in space.items()})
    return draws


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _expect_close(actual: Tensor, expected: Tensor, dtype: torch.dtype, message: str) -> None:
    tolerance = 1e-9 if dtype == torch.float64 else 1e-4
    _expect(bool(torch.allclose(actual, expected, rtol=tolerance, atol=tolerance)), message)
