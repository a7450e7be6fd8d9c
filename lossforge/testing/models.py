"""The contract kit for models: every promise of [lossforge.contract.ModelPlugin][], as named checks (the
same [lossforge.testing.Check][lossforge.testing.common.Check] values as for losses and miners, one pytest id per
check).

Model checks ([MODEL_CHECKS][lossforge.testing.models.MODEL_CHECKS]):

* `check_model_constructor` — an `nn.Module` class taking keyword-only `input_shape` and `output_dim`,
  every other parameter with a default, none of them a reserved key (`weights`, `embedding_dim`, …);
* `check_model_shapes` — maps `(N, *input_shape)` to `(N, output_dim)` for images `(3, 16, 16)` or flat
  samples `(8,)` (whichever it accepts) and two output widths;
* `check_model_trains` — a few optimizer steps on a fixed batch lower a cross-entropy loss, with finite
  gradients reaching every trainable parameter.

```pycon
>>> [check.name for check in model_checks("mlp")]
['check_model_constructor', 'check_model_shapes', 'check_model_trains']

```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from lossforge.contract import MODEL_INPUTS, RESERVED_MODEL_KEYS, ContractError, check_component_class
from lossforge.registry import MODELS
from lossforge.testing.common import Check, _provided_by

MODEL_INPUT_SHAPES: tuple[tuple[int, ...], ...] = ((3, 16, 16), (8,))
"""Sample shapes a model is tried on, in order: images, then flat features."""


def model_names(pattern: str = "*", *, distribution: str | None = None) -> list[str]:
    """Registered model names matching `pattern`, optionally only those a given package provides."""
    return [name for name in MODELS.names(pattern) if _provided_by(MODELS.info(name).distribution, distribution)]


# -- the checks ------------------------------------------------------------------------------------------------


class _Model:
    def __init__(self, model: str | type[nn.Module], params: Mapping[str, Any] | None) -> None:
        if isinstance(model, str):
            self.cls, self.label = MODELS.load(model), f"model {model!r}"
        else:
            self.cls, self.label = model, f"model {getattr(model, '__qualname__', model)!r}"
        self.params = {key: value for key, value in dict(params or {}).items() if key not in RESERVED_MODEL_KEYS}

    def build(self, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
        return self.cls(input_shape=input_shape, output_dim=output_dim, **self.params)

    def input_shape(self) -> tuple[int, ...]:
        """The first of [MODEL_INPUT_SHAPES][lossforge.testing.models.MODEL_INPUT_SHAPES] the model maps to
        `(N, output_dim)`, else the first it runs on at all (the shape check then says what came out)."""
        problems, runs = [], []
        for shape in MODEL_INPUT_SHAPES:
            try:
                with torch.no_grad():
                    out = self.build(shape, 3).eval()(torch.zeros(2, *shape))
            except Exception as error:
                problems.append(f"{shape}: {type(error).__name__}: {error}")
                continue
            if tuple(out.shape) == (2, 3):
                return shape
            runs.append(shape)
        if runs:
            return runs[0]
        raise AssertionError(
            f"{self.label}: builds and runs on none of the sample shapes tried — {'; '.join(problems)}"
        )


def check_model_constructor(subject: _Model) -> None:
    """Keyword-only `input_shape` / `output_dim`; the rest with defaults; no reserved key among them."""
    try:
        check_component_class("model", subject.cls)
    except ContractError as error:
        raise AssertionError(f"{subject.label}: {error}") from None
    parameters = list(inspect.signature(subject.cls.__init__).parameters.values())[1:]
    for parameter in parameters:
        if parameter.name in MODEL_INPUTS and parameter.kind is not parameter.KEYWORD_ONLY:
            raise AssertionError(f"{subject.label}: `{parameter.name}` must be keyword-only (put it after `*`)")
        if parameter.name in RESERVED_MODEL_KEYS:
            raise AssertionError(
                f"{subject.label}: the parameter `{parameter.name}` is a key lossforge reserves for itself "
                f"({', '.join(RESERVED_MODEL_KEYS)}) and never passes to a model; rename it"
            )
        if (
            parameter.name not in MODEL_INPUTS
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
            and parameter.default is parameter.empty
            and parameter.name not in subject.params
        ):
            raise AssertionError(f"{subject.label}: parameter `{parameter.name}` needs a default (configs may omit it)")


def check_model_shapes(subject: _Model) -> None:
    """`(N, *input_shape) → (N, output_dim)` for two output widths."""
    shape = subject.input_shape()
    for output_dim in (1, 5):
        model = subject.build(shape, output_dim).eval()
        with torch.no_grad():
            out = model(torch.randn(4, *shape))
        if tuple(out.shape) != (4, output_dim):
            raise AssertionError(
                f"{subject.label}: input (4, *{shape}) with output_dim={output_dim} gave {tuple(out.shape)}, "
                f"expected (4, {output_dim})"
            )


def check_model_trains(subject: _Model) -> None:
    """A few Adam steps on one fixed batch lower a cross-entropy loss; every trainable parameter gets a finite
    gradient."""
    shape = subject.input_shape()
    torch.manual_seed(0)
    model = subject.build(shape, 3).train()
    features, targets = torch.randn(12, *shape), torch.arange(12) % 3
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(8):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(features), targets)
        loss.backward()
        if step == 0:
            for name, parameter in model.named_parameters():
                if parameter.requires_grad and (parameter.grad is None or not torch.isfinite(parameter.grad).all()):
                    raise AssertionError(f"{subject.label}: parameter {name} got no finite gradient")
        optimizer.step()
        losses.append(float(loss.detach()))
    if not losses[-1] < losses[0]:
        raise AssertionError(
            f"{subject.label}: 8 steps on one batch did not lower the loss ({losses[0]:.4f} → {losses[-1]:.4f})"
        )


MODEL_CHECKS: tuple[Callable[[_Model], None], ...] = (check_model_constructor, check_model_shapes, check_model_trains)


def model_checks(model: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> list[Check]:
    """The checks of one model (a registry name or the class), built with `params`."""
    subject = _Model(model, params)
    component = model if isinstance(model, str) else model.__qualname__
    return [Check(component, check.__name__, _bind(check, subject)) for check in MODEL_CHECKS]


def check_model(model: str | type[nn.Module], *, params: Mapping[str, Any] | None = None) -> None:
    """Run every model check; the first broken promise raises `AssertionError`."""
    for check in model_checks(model, params=params):
        check()


def _bind(check: Callable[[Any], None], subject: Any) -> Callable[[], None]:
    return lambda: check(subject)
