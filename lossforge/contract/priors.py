"""Search spaces, what the tuning protocol may tune: the priors (`FloatRange`, `IntRange`, `Categorical`),
their plain-data form parsed and checked against a component's constructor, and an Optuna suggestion per prior.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lossforge.contract.vocabulary import ContractError, _label, did_you_mean

# -- search spaces: what the tuning protocol may tune ----------------------------------------------------
#
# "A Metric Learning Reality Check" (Musgrave et al. 2020): loss comparisons are fair only with an equal
# tuning budget. So every component declares its tunable parameters with a prior, and the benchmark samples
# them with Optuna, the same number of trials for every loss. Plain data (a dict per parameter) is the form a
# plugin uses, so it never imports lossforge; the dataclasses below are what that data is parsed into.


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class FloatRange:
    """A real parameter's prior: uniform on `[low, high]`, or log-uniform when `log` (then `low > 0`).

    Plain data: `{"low": 0.05, "high": 10.0, "log": True}`. `"type": "float"` is the default, so bounds
    written as ints (`{"low": 0, "high": 5}`) still make a float range: the type is never guessed.

    ```pycon
    >>> prior = FloatRange(0.05, 10.0, log=True)
    >>> str(prior), prior.contains(1), prior.contains(20.0), prior.probes()
    ('[0.05, 10] log', True, False, (0.05, 0.7071067811865476, 10.0))

    ```
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not all(_is_number(bound) and math.isfinite(bound) for bound in (self.low, self.high)):
            raise ValueError(f"low and high must be finite numbers, got low={self.low!r}, high={self.high!r}")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low!r}, high={self.high!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"log must be True or False, got {self.log!r}")
        if self.log and not self.low > 0:
            raise ValueError(f"log=True needs low > 0, got low={self.low!r}")
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    def contains(self, value: Any) -> bool:
        """Whether `value` is a number in `[low, high]`."""
        return _is_number(value) and self.low <= value <= self.high

    def probes(self) -> tuple[float, ...]:
        """The bounds and the midpoint (geometric when `log`): the contract kit's deterministic draws."""
        middle = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
        return (self.low, middle, self.high)

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class IntRange:
    """An integer parameter's prior: `low, low + step, …, high`, uniform; or log-uniform when `log` (then
    `low > 0` and `step` 1, as Optuna requires).

    Plain data: `{"low": 1, "high": 8, "type": "int"}`, optionally with `"step"` and `"log"`. Without
    `"type": "int"` a range is a float range; [search_space][lossforge.contract.search_space] refuses one for an `int`
    parameter.

    ```pycon
    >>> prior = IntRange(2, 10, step=2)
    >>> str(prior), prior.contains(6), prior.contains(5), prior.probes()
    ('[2, 10] int step 2', True, False, (2, 6, 10))

    ```
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in (self.low, self.high)):
            raise ValueError(f"low and high must be ints, got low={self.low!r}, high={self.high!r}")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low!r}, high={self.high!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"log must be True or False, got {self.log!r}")
        if not (isinstance(self.step, int) and not isinstance(self.step, bool) and self.step >= 1):
            raise ValueError(f"step must be an int >= 1, got {self.step!r}")
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"high - low must be a multiple of step, got low={self.low}, high={self.high}, step={self.step}"
            )
        if self.log and not (self.low > 0 and self.step == 1):
            raise ValueError(f"log=True needs low > 0 and step 1, got low={self.low}, step={self.step}")

    def contains(self, value: Any) -> bool:
        """Whether `value` is an int on the grid `low, low + step, …, high`."""
        on_grid = isinstance(value, int) and not isinstance(value, bool) and (value - self.low) % self.step == 0
        return on_grid and self.low <= value <= self.high

    def probes(self) -> tuple[int, ...]:
        """The bounds and a value near the middle (geometric when `log`): the contract kit's draws."""
        if self.log:
            middle = min(max(round(math.sqrt(self.low * self.high)), self.low), self.high)
        else:
            middle = self.low + (self.high - self.low) // self.step // 2 * self.step
        return tuple(dict.fromkeys((self.low, middle, self.high)))

    def __str__(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"[{self.low}, {self.high}] int{step}" + (" log" if self.log else "")


@dataclass(frozen=True)
class Categorical:
    """A prior over a few values: `None`, bools, numbers or strings (what an Optuna study can store).

    Plain data: `{"choices": ["inverse_frequency", "effective_number"]}`. `None` among the choices keeps
    an "inherit" default reachable: a miner's `margin=None` means the loss's margin.

    ```pycon
    >>> prior = Categorical([None, 0.2, "cosine"])
    >>> str(prior), prior.contains(None), prior.probes()
    ("{None, 0.2, 'cosine'}", True, (None, 0.2, 'cosine'))

    ```
    """

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.choices, list | tuple):
            raise ValueError(f"choices must be a list of values, got {self.choices!r}")
        if not self.choices:
            raise ValueError("choices must not be empty")
        for choice in self.choices:
            if choice is not None and not isinstance(choice, bool | int | float | str):
                raise ValueError(f"choices must be None, bools, numbers or strings, got {choice!r}")
        if len({(type(choice), choice) for choice in self.choices}) < len(self.choices):
            raise ValueError(f"choices must not repeat a value, got {list(self.choices)}")
        object.__setattr__(self, "choices", tuple(self.choices))

    def contains(self, value: Any) -> bool:
        """Whether `value` is one of the choices."""
        return value in self.choices

    def probes(self) -> tuple[Any, ...]:
        """Every choice: the contract kit's draws."""
        return self.choices

    def __str__(self) -> str:
        return "{" + ", ".join(repr(choice) for choice in self.choices) + "}"


Prior = FloatRange | IntRange | Categorical
"""A parameter's prior, as [parse_prior][lossforge.contract.parse_prior] returns it."""

_RANGE_KEYS = ("low", "high", "log", "type")


def parse_prior(declared: Any) -> Prior:
    """A prior from its plain-data form (a prior passes through); `ValueError` naming the broken rule.

    `{"choices": [...]}` is a [Categorical][lossforge.contract.Categorical]; `{"low", "high"[, "log"]}` a
    [FloatRange][lossforge.contract.FloatRange]; with `"type": "int"` (and optionally `"step"`) an
    [IntRange][lossforge.contract.IntRange].

    ```pycon
    >>> parse_prior({"low": 0.05, "high": 10.0, "log": True})
    FloatRange(low=0.05, high=10.0, log=True)
    >>> parse_prior({"low": 1, "high": 8, "type": "int"})
    IntRange(low=1, high=8, log=False, step=1)
    >>> parse_prior({"choices": ["inverse_frequency", "effective_number"]})
    Categorical(choices=('inverse_frequency', 'effective_number'))
    >>> parse_prior({"low": 0.0, "hihg": 5.0})
    Traceback (most recent call last):
    ...
    ValueError: unknown key 'hihg'. Did you mean 'high'? A float range takes 'low', 'high', 'log', 'type'

    ```
    """
    if isinstance(declared, FloatRange | IntRange | Categorical):
        return declared
    if not isinstance(declared, Mapping):
        raise ValueError(
            f"expected {{'low': ..., 'high': ...[, 'log': True][, 'type': 'int']}}, {{'choices': [...]}} or a "
            f"FloatRange / IntRange / Categorical, got {declared!r}"
        )
    if "choices" in declared:
        if len(declared) > 1:
            raise ValueError(f"a prior with 'choices' takes no other key, got {sorted(map(str, declared))}")
        return Categorical(declared["choices"])
    kind = declared.get("type", "float")
    if kind not in ("float", "int"):
        raise ValueError(f"'type' must be 'float' or 'int', got {kind!r}")
    allowed = (*_RANGE_KEYS, "step") if kind == "int" else _RANGE_KEYS
    for key in declared:
        if key not in allowed:
            hint = did_you_mean(str(key), (*allowed, "choices"), n=1)
            needs = ' (\'step\' needs "type": "int")' if key == "step" else ""
            raise ValueError(f"unknown key {key!r}.{hint} A {kind} range takes {', '.join(map(repr, allowed))}{needs}")
    missing = [key for key in ("low", "high") if key not in declared]
    if missing:
        raise ValueError(f"a range needs 'low' and 'high', missing {missing}")
    options = {key: declared[key] for key in ("log", "step") if key in declared}
    return (IntRange if kind == "int" else FloatRange)(declared["low"], declared["high"], **options)


def parse_search_space(space: Any, *, owner: str) -> dict[str, Prior]:
    """`{name: prior}` from a declared search space, each prior parsed by [parse_prior][lossforge.contract.parse_prior];
    a [ContractError][lossforge.contract.ContractError] naming `owner`, the parameter and the rule otherwise. This
    checks the form only; [search_space][lossforge.contract.search_space] also holds a component's keys to its
    constructor.

    ```pycon
    >>> parse_search_space({"gamma": {"low": 0, "high": 5}}, owner="focal")
    {'gamma': FloatRange(low=0.0, high=5.0, log=False)}
    >>> parse_search_space({"gamma": {"low": 5.0, "high": 0.0}}, owner="focal")
    Traceback (most recent call last):
    ...
    lossforge.contract.vocabulary.ContractError: focal has an invalid prior for 'gamma' in its search space: low must be < high, got low=5.0, high=0.0

    ```
    """  # noqa: E501
    if not isinstance(space, Mapping):
        raise ContractError(owner, f"must declare its search space as a dict {{parameter: prior}}, got {space!r}")
    parsed: dict[str, Prior] = {}
    for name, declared in space.items():
        if not isinstance(name, str):
            raise ContractError(owner, f"must name each parameter of its search space by a string, got {name!r}")
        try:
            parsed[name] = parse_prior(declared)
        except ValueError as error:
            raise ContractError(owner, f"has an invalid prior for {name!r} in its search space: {error}") from None
    return parsed


def search_space(component: Any) -> dict[str, Prior]:
    """The priors a loss or miner (class or instance) declares as `search_space`; `{}` if none.

    Read through the Protocols ([LossPlugin.search_space][lossforge.contract.LossPlugin.search_space]), the plain-data
    form parsed by [parse_prior][lossforge.contract.parse_prior]. Each key must be a constructor parameter other than
    `reduction` (which the framework sets), and a parameter annotated `int` needs an int range or choices; a
    [ContractError][lossforge.contract.ContractError] names the component, the parameter and the rule otherwise. Whether
    each default lies inside its prior is the contract kit's `check_search_space`.

    ```pycon
    >>> class Smooth:
    ...     tasks = ("regression",)
    ...     search_space = {"beta": {"low": 0.1, "high": 10.0, "log": True}}
    ...     def __init__(self, *, beta: float = 1.0, reduction: str = "mean") -> None: ...
    >>> search_space(Smooth)
    {'beta': FloatRange(low=0.1, high=10.0, log=True)}

    ```
    """
    declared = getattr(component, "search_space", None)
    if declared is None:
        return {}
    label = _label(component)
    space = parse_search_space(declared, owner=label)
    cls = component if inspect.isclass(component) else type(component)
    parameters = {
        parameter.name: parameter
        for parameter in inspect.signature(cls).parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
    tunable = [name for name in parameters if name != "reduction"]
    for name, prior in space.items():
        if name == "reduction":
            raise ContractError(label, "declares a prior for 'reduction' in its search space; the framework sets it")
        if name not in parameters:
            raise ContractError(
                label,
                f"declares a prior for {name!r} in its search space, which is not a constructor parameter."
                f"{did_you_mean(name, tunable, n=1)} Its parameters: {', '.join(tunable) or 'none'}",
            )
        if isinstance(prior, FloatRange) and parameters[name].annotation in (int, "int"):
            raise ContractError(
                label,
                f"has an invalid prior for {name!r} in its search space: the parameter is an `int`, so the "
                f'range needs "type": "int"',
            )
    return space


def suggest(trial: Any, name: str, prior: Prior) -> Any:
    """Ask an Optuna `trial` for `name` under `prior`: `suggest_float` (log-uniform when
    `prior.log`), `suggest_int` or `suggest_categorical`. This module never imports Optuna; the
    caller's trial brings it.

    ```pycon
    >>> import optuna
    >>> suggest(optuna.trial.FixedTrial({"loss.delta": 0.5}), "loss.delta", FloatRange(0.05, 10.0, log=True))
    0.5

    ```
    """
    if isinstance(prior, FloatRange):
        return trial.suggest_float(name, prior.low, prior.high, log=prior.log)
    if isinstance(prior, IntRange):
        return trial.suggest_int(name, prior.low, prior.high, step=prior.step, log=prior.log)
    return trial.suggest_categorical(name, list(prior.choices))


def describe_search_space(component: Any) -> str:
    """One line for `lossforge list`: `gamma in [0, 5], delta in [0.05, 10] log`; `nothing of its
    own` for an empty space; the broken rule for an invalid one (`lossforge check` reports it too).

    ```pycon
    >>> class Plain:
    ...     tasks = ("regression",)
    >>> describe_search_space(Plain)
    'nothing of its own'

    ```
    """
    try:
        space = search_space(component)
    except ContractError as error:
        return f"INVALID: {error.rule}"
    return ", ".join(f"{name} in {prior}" for name, prior in space.items()) or "nothing of its own"
