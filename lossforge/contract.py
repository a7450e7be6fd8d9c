"""The plugin contract, written down once: the tasks, what lossforge reads from a loss or a miner, and
the vocabulary every module shares (environment switches, name normalising, "did you mean").

A loss or a miner is a plain `torch.nn.Module` subclass; it need not import lossforge. The
[LossPlugin][lossforge.contract.LossPlugin] and [MinerPlugin][lossforge.contract.MinerPlugin] Protocols list **every**
attribute and method the framework reads from one, each with its meaning. Only `tasks` (a loss) and `tuple_kind` (a
miner) are required; every other member is optional, and [loss_traits][lossforge.contract.loss_traits] /
[miner_traits][lossforge.contract.miner_traits] — the one place that reads a plugin through `getattr` — fill in the
documented default for a plugin that does not declare it. The contract kit ([lossforge.testing][]) checks the same
Protocols, so a plugin that passes the kit trains.

A component may also declare its `search_space`: a prior per tunable constructor parameter, as plain data
(`{"gamma": {"low": 0.0, "high": 5.0}}`) or as [FloatRange][lossforge.contract.FloatRange] /
[IntRange][lossforge.contract.IntRange] / [Categorical][lossforge.contract.Categorical].
[search_space][lossforge.contract.search_space] reads and validates it; [suggest][lossforge.contract.suggest] turns a
prior into an Optuna suggestion, so every loss is tuned with the same budget (the honest-comparison protocol).

This module imports neither torch nor any plugin, so the command line can use it while staying fast.

```pycon
>>> Task("multiclass") is Task.MULTICLASS, Task.METRIC == "metric"
(True, True)
>>> training_task(("metric",), Task.MULTICLASS)
<Task.METRIC: 'metric'>
>>> did_you_mean("focall", ["focal", "l1", "bce"])
" Did you mean 'focal'?"

```
"""

from __future__ import annotations

import difflib
import enum
import inspect
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from torch import Tensor


class Task(enum.StrEnum):
    """What a dataset asks of a model, and what a loss can train.

    A `StrEnum`: each member *is* its string (`Task.BINARY == "binary"`), so configs, MLflow tags and
    plugins that declare `tasks = ("regression",)` as plain strings need no conversion. What a task
    means for training — output head, prediction rule, metrics, target encoding, plots — lives in one
    `TaskSpec` per task ([lossforge.tasks][]).
    """

    REGRESSION = "regression"  #: real-valued targets (N,) or (N, D)
    BINARY = "binary"  #: one score per sample; targets 0/1
    MULTICLASS = "multiclass"  #: C logits per sample; targets are class indices
    MULTILABEL = "multilabel"  #: K independent yes/no labels per sample
    METRIC = "metric"  #: an embedding trained from class labels, evaluated by retrieval


TASKS: tuple[Task, ...] = tuple(Task)
"""Every task, in declaration order."""
DATASET_TASKS: tuple[Task, ...] = (Task.REGRESSION, Task.BINARY, Task.MULTICLASS, Task.MULTILABEL)
"""The tasks a dataset can declare (a metric loss trains on a class-labelled dataset)."""
CLASS_LABEL_TASKS: tuple[Task, ...] = (Task.BINARY, Task.MULTICLASS)
"""Dataset tasks whose targets are one class label per sample, so a metric loss can embed them."""

TupleKind = Literal["pair", "triplet"]
TUPLE_KINDS: tuple[str, ...] = ("pair", "triplet")
TargetEncoding = Literal["zero_one", "plus_minus_one"]
TARGET_ENCODINGS: tuple[str, ...] = ("zero_one", "plus_minus_one")

LOSS_GROUP = "lossforge.losses"
MINER_GROUP = "lossforge.miners"
DATASET_GROUP = "lossforge.datasets"
MODEL_GROUP = "lossforge.models"
GROUPS: dict[str, str] = {"loss": LOSS_GROUP, "miner": MINER_GROUP, "dataset": DATASET_GROUP, "model": MODEL_GROUP}
"""The entry-point group of each component kind."""
PROVIDER_GROUP = "lossforge.providers"
"""One entry point, many components: `name = "module:function"`; the function returns
`{"lossforge.losses": {name: "module:attribute"}, "lossforge.miners": {...}}` (see [lossforge.registry][])."""
PLUGIN_HELP = (
    "Losses, miners, datasets and models come from Python entry points in the groups 'lossforge.losses', "
    "'lossforge.miners', 'lossforge.datasets' and 'lossforge.models' (or from a provider in "
    "'lossforge.providers', one entry point for many): `pip install` a package that declares them (see "
    "plugins/README.md), then `lossforge list` shows it."
)
RESERVED_DATASET_KEYS: tuple[str, ...] = ("split_seed", "augment", "class_disjoint")
"""Dataset settings lossforge reads itself; never passed to the dataset function."""
RESERVED_MODEL_KEYS: tuple[str, ...] = ("weights", "freeze_batchnorm", "embedding_dim", "normalize")
"""Model settings lossforge applies itself; never passed to the model's constructor (docs/your-data.md)."""
MODEL_INPUTS: tuple[str, ...] = ("input_shape", "output_dim")
"""Constructor keywords lossforge fills in from the data and the task; not config parameters."""


class ContractError(TypeError):
    """A class that does not meet the loss or miner contract; the message names it and the rule.

    `rule` is the broken promise alone (`"must declare …"`), for callers that name the class their way.
    """

    def __init__(self, subject: str, rule: str) -> None:
        super().__init__(f"{subject} {rule}")
        self.rule = rule


# -- the Protocols -----------------------------------------------------------------------------------


class LossPlugin(Protocol):
    """Everything lossforge reads from a loss. `tasks` is required; the rest is optional.

    Called `loss(prediction, target)` for the supervised tasks and `loss(embeddings, labels,
    indices_tuple)` for `"metric"` (`indices_tuple` is a miner's output or `None`: every
    pair/triplet of the batch). Returns a scalar for `reduction="mean" | "sum"` and per-sample (per pair
    or triplet for metric losses) values for `"none"`. Constructor parameters are keyword-only, each
    with a default and a type annotation, and include `reduction`. `search_space` says which of them the
    benchmark may tune, and over which prior (plain data; see
    [search_space][lossforge.contract.LossPlugin.search_space]).
    """

    tasks: ClassVar[tuple[str, ...]]
    """Required. The tasks this loss can train, drawn from [TASKS][lossforge.contract.TASKS] (plain strings work
    too)."""
    name: ClassVar[str]
    """The name used in messages; default: the class name."""
    binary_target_encoding: ClassVar[str]
    """Binary targets as `"zero_one"` (default) or `"plus_minus_one"` (hinge-style losses)."""
    mean_is_weighted: bool
    r"""`True` when `"none"` returns $w_i \ell_i$ and `"mean"` is $\sum w_i \ell_i / \sum w_i$
    (class-weighted losses); default `False`: `"mean"` is `"none".mean()`."""
    tuple_kind: ClassVar[str | None]
    """Metric losses: `"pair"` or `"triplet"`, the tuples a miner must hand it; default `None`
    (the loss takes either, or no miner)."""
    distance: str | None
    """Metric losses: the distance the embeddings are compared with (`"euclidean"`, `"cosine"`, …);
    a miner without its own uses it, and retrieval evaluation ranks by cosine when it is `"cosine"`."""
    margin: float | None
    """Metric losses: the margin a miner without its own uses. Default `None`."""
    scan_targets: bool
    """Whether the loss scans its targets' *values* (labels in {0, 1}, class indices in range) on every
    call. The framework sets it to `False` when the data were validated once up front; a loss that
    does not declare it is never told (its scans, if any, keep running)."""
    last_num_tuples: Tensor
    """Metric losses: tuples in the last call and those with a non-zero loss (0-d int tensors), logged
    as `train/tuples` and `train/active_fraction`. Optional."""
    last_num_active: Tensor
    search_space: ClassVar[Mapping[str, Any]]
    """Optional. What the tuning protocol may tune: a prior per constructor parameter, as plain data that
    needs no lossforge import — ``{"gamma": {"low": 0.0, "high": 5.0}, "delta": {"low": 0.05, "high":
    10.0, "log": True}, "steps": {"low": 1, "high": 8, "type": "int"}, "weights": {"choices": ["a",
    "b"]}}`` — or lossforge's [FloatRange][lossforge.contract.FloatRange] / [IntRange][lossforge.contract.IntRange] /
    [Categorical][lossforge.contract.Categorical]. Keys are constructor parameters other than `reduction`; each default
    lies inside its prior (a `None` default, "inherit" or "off", is allowed). Default `{}`: the loss is tuned over the
    shared learning-rate (and weight-decay) range only, which every loss gets. Read by
    [search_space][lossforge.contract.LossPlugin.search_space]."""
    lr_multiplier: float
    """Optional. A loss with parameters of its own (class proxies, a classifier's weight matrix) is trained
    in a parameter group of its own at `optimizer.lr * lr_multiplier` (`optimizer.loss_lr_multiplier`
    overrides it) and without weight decay. Default 1.0; proxy losses usually want far more (their
    proxies start random and must move as fast as the embedding they anchor)."""

    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        """Optional: called once with the training targets before training (e.g. class weights).

        `embedding_dim` — the width of the model's output the loss will see (metric tasks; `None`
        otherwise) — is passed only to a hook whose signature takes it, so older hooks keep working. A
        learnable loss creates its parameters here, sized from the data (`(num_classes, embedding_dim)`
        proxies), drawn from torch's global generator, which the run has seeded: every DDP process draws
        the same values, and DDP keeps them equal because the loss is a submodule of the trained module.
        Its parameters are in the checkpoints; `resume=` prepares a new loss from the same data, then
        loads them, and refuses a checkpoint whose sizes differ with an error naming the loss and both.
        """

    def __call__(self, prediction: Tensor, target: Tensor, /, *args: Any) -> Tensor:
        """The loss value; see the class docstring for the call forms."""


class MinerPlugin(Protocol):
    """Everything lossforge reads from a miner. `tuple_kind` is required.

    Called `miner(embeddings (N, D), labels (N,))` under no gradient; returns int64 1-D index tensors:
    `(anchor, positive, anchor, negative)` for pairs, `(anchor, positive, negative)` for triplets.
    """

    tuple_kind: ClassVar[str]
    """Required. `"pair"` or `"triplet"`."""
    name: ClassVar[str]
    """The name used in messages; default: the class name."""
    margin: float | None
    """Optional constructor parameters. When the config leaves one `None` and the loss has it, the
    training pipeline passes the loss's value, so a loss and its miner share one margin and distance."""
    distance: str | None
    search_space: ClassVar[Mapping[str, Any]]
    """Optional. What the tuning protocol may tune, declared as a loss declares it (see
    [LossPlugin.search_space][lossforge.contract.LossPlugin.search_space]); default `{}`. A `None` default ("the loss's
    margin") is allowed; a prior that should be able to keep it lists `None` among its choices."""

    def __call__(self, embeddings: Tensor, labels: Tensor, /) -> tuple[Tensor, ...]:
        """Index tuples into the batch."""


class DatasetPlugin(Protocol):
    """Everything lossforge reads from a dataset: a callable with keyword-only parameters and a required
    keyword `seed` (the **split seed**, `dataset.split_seed`; never the run seed — docs/decisions.md §1).

    It returns a mapping `{"train": (features, targets), "val": (...), "test": (...)}` of numpy arrays or
    tensors of any per-sample shape (images as `uint8` `(N, C, H, W)`), per split a
    `torch.utils.data.Dataset` with a `targets` attribute (all of that split's targets, as an array), a
    `LightningDataModule`, or lossforge's own `DataSplits`. An optional key `"classes_disjoint": True`
    says the test classes are not the training classes (the metric-learning convention).
    [lossforge.data.adapter.to_data_splits][] turns any of these into lossforge's splits.
    """

    task: str
    """Required unless the dataset returns `DataSplits`: one of [DATASET_TASKS][lossforge.contract.DATASET_TASKS] as a
    plain string."""
    num_classes: int
    """Optional. The number of classes (a class absent from train still counts); default: from the targets."""
    class_names: tuple[str, ...]
    """Optional. A name per class (or per label, multilabel)."""
    mean: tuple[float, ...]
    """Optional, images: per-channel mean and std, applied on the training device after `uint8 / 255`."""
    std: tuple[float, ...]
    class_disjoint: bool
    """Optional. `True`: the test split's classes are disjoint from the training classes."""

    def __call__(self, *, seed: int, **params: Any) -> Any:
        """The three splits, drawn from the split seed `seed`."""


class ModelPlugin(Protocol):
    """Everything lossforge reads from a model: an `nn.Module` class whose constructor takes keyword-only
    `input_shape` (one sample's shape, `(3, 32, 32)` or `(64,)`) and `output_dim` (classes, labels,
    targets, or `embedding_dim` for a metric loss), plus its own typed keyword parameters. The keys of
    [RESERVED_MODEL_KEYS][lossforge.contract.RESERVED_MODEL_KEYS] are lossforge's and are never passed to it."""

    def __init__(self, *, input_shape: tuple[int, ...], output_dim: int) -> None:
        """Build the network for samples of `input_shape`, with `output_dim` outputs."""

    def __call__(self, features: Tensor, /) -> Tensor:
        """`(N, *input_shape) → (N, output_dim)`."""


# -- the adapter: the one place that reads a plugin with defaults ---------------------------------------


@dataclass(frozen=True)
class LossTraits:
    """What a loss declares, with the Protocol's defaults filled in (see
    [LossPlugin][lossforge.contract.LossPlugin])."""

    name: str
    tasks: tuple[Task, ...]
    binary_target_encoding: str = "zero_one"
    mean_is_weighted: bool = False
    tuple_kind: str | None = None
    distance: str | None = None
    margin: float | None = None
    lr_multiplier: float = 1.0


@dataclass(frozen=True)
class MinerTraits:
    """What a miner declares, with the Protocol's defaults filled in (see
    [MinerPlugin][lossforge.contract.MinerPlugin])."""

    name: str
    tuple_kind: str
    margin: float | None = None
    distance: str | None = None


def _declared_tasks(obj: Any) -> tuple[Task, ...]:
    declared = getattr(obj, "tasks", None)
    if not (isinstance(declared, tuple) and declared and all(task in TASKS for task in declared)):
        raise ContractError(
            _label(obj),
            f"must declare a class attribute `tasks`, a non-empty tuple drawn from {[str(t) for t in TASKS]}, "
            f"got {declared!r}",
        )
    return tuple(Task(task) for task in declared)


def _label(obj: Any) -> str:
    cls = obj if inspect.isclass(obj) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def loss_traits(loss: Any) -> LossTraits:
    """Read a loss class or instance through [LossPlugin][lossforge.contract.LossPlugin], with defaults for what it
    leaves out.

    Raises [ContractError][lossforge.contract.ContractError] for a missing or invalid `tasks`, `binary_target_encoding`
    or `tuple_kind`.

    ```pycon
    >>> class Plain:  # a plugin that declares only what is required
    ...     tasks = ("regression",)
    >>> loss_traits(Plain).tasks, loss_traits(Plain).binary_target_encoding
    ((<Task.REGRESSION: 'regression'>,), 'zero_one')

    ```
    """
    tasks = _declared_tasks(loss)
    encoding = getattr(loss, "binary_target_encoding", "zero_one")
    if encoding not in TARGET_ENCODINGS:
        raise ContractError(
            _label(loss), f"must set `binary_target_encoding` to one of {TARGET_ENCODINGS}, got {encoding!r}"
        )
    tuple_kind = getattr(loss, "tuple_kind", None)
    if tuple_kind is not None and tuple_kind not in TUPLE_KINDS:
        raise ContractError(
            _label(loss), f"must set `tuple_kind` to 'pair', 'triplet' or leave it out, got {tuple_kind!r}"
        )
    multiplier = getattr(loss, "lr_multiplier", 1.0)
    if not (_is_number(multiplier) and math.isfinite(multiplier) and multiplier > 0):
        raise ContractError(_label(loss), f"must set `lr_multiplier` to a finite number > 0, got {multiplier!r}")
    cls = loss if inspect.isclass(loss) else type(loss)
    return LossTraits(
        name=getattr(loss, "name", cls.__name__),
        tasks=tasks,
        binary_target_encoding=encoding,
        mean_is_weighted=bool(getattr(loss, "mean_is_weighted", False)),
        tuple_kind=tuple_kind,
        distance=getattr(loss, "distance", None),
        margin=getattr(loss, "margin", None),
        lr_multiplier=float(multiplier),
    )


def miner_traits(miner: Any) -> MinerTraits:
    """Read a miner class or instance through [MinerPlugin][lossforge.contract.MinerPlugin];
    [ContractError][lossforge.contract.ContractError] if invalid.

    ```pycon
    >>> class Plain:
    ...     tuple_kind = "triplet"
    >>> miner_traits(Plain).margin is None
    True

    ```
    """
    tuple_kind = getattr(miner, "tuple_kind", None)
    if tuple_kind not in TUPLE_KINDS:
        raise ContractError(
            _label(miner), f"must declare a class attribute `tuple_kind` = 'pair' or 'triplet', got {tuple_kind!r}"
        )
    cls = miner if inspect.isclass(miner) else type(miner)
    return MinerTraits(
        name=getattr(miner, "name", cls.__name__),
        tuple_kind=tuple_kind,
        margin=getattr(miner, "margin", None),
        distance=getattr(miner, "distance", None),
    )


def check_component_class(kind: str, obj: Any) -> None:
    """Raise [ContractError][lossforge.contract.ContractError] unless `obj` meets its `kind`'s contract: a loss or miner
    is an `nn.Module` subclass declaring `tasks` / `tuple_kind`; a dataset is a callable taking the keyword
    `seed`; a model is an `nn.Module` subclass whose constructor takes `input_shape` and `output_dim`."""
    from torch import nn  # deferred: listing names must not import torch

    if kind == "dataset":
        check_dataset_callable(obj)
        return
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise ContractError(f"{kind} component", f"must be a torch.nn.Module subclass, got {obj!r}")
    if kind == "loss":
        loss_traits(obj)
    elif kind == "miner":
        miner_traits(obj)
    else:
        accepted = inspect.signature(obj.__init__).parameters
        missing = [name for name in MODEL_INPUTS if name not in accepted]
        if missing:
            raise ContractError(
                f"model {_label(obj)}",
                f"must take the keyword-only constructor parameters {', '.join(MODEL_INPUTS)} (missing: "
                f"{', '.join(missing)}): lossforge passes one sample's shape and the output width",
            )


def check_dataset_callable(obj: Any) -> None:
    """Raise [ContractError][lossforge.contract.ContractError] unless `obj` is a callable that takes the keyword `seed`
    and, if it declares `task`, declares one of [DATASET_TASKS][lossforge.contract.DATASET_TASKS].

    ```pycon
    >>> def toy(*, seed: int): ...
    >>> toy.task = "multiclas"
    >>> check_dataset_callable(toy)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lossforge.contract.ContractError: dataset toy declares task 'multiclas'. Did you mean 'multiclass'? ...

    ```
    """
    if not callable(obj):
        raise ContractError("dataset component", f"must be a callable (*, seed, **params), got {obj!r}")
    name = getattr(obj, "__name__", repr(obj))
    try:
        accepted = set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        accepted = set()
    if "seed" not in accepted:
        raise ContractError(
            f"dataset {name}",
            "must take the keyword `seed` (the split seed, dataset.split_seed): a split must be reproducible",
        )
    task = getattr(obj, "task", None)
    if task is not None and task not in DATASET_TASKS:
        raise ContractError(
            f"dataset {name}",
            f"declares task {task!r}.{did_you_mean(str(task), [str(t) for t in DATASET_TASKS], n=1)} Expected one of "
            f"{', '.join(DATASET_TASKS)}.",
        )


def prepare_loss(loss: Any, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
    """Call the loss's optional `prepare` hook with the training targets, the number of classes and — if
    the hook takes it (`embedding_dim` or `**kwargs` in its signature) — the model's output width.

    ```pycon
    >>> class Old:  # a hook written before `embedding_dim` existed
    ...     tasks = ("metric",)
    ...     def prepare(self, *, targets, num_classes):
    ...         self.seen = num_classes
    >>> old = Old()
    >>> prepare_loss(old, targets=None, num_classes=3, embedding_dim=8)
    >>> old.seen
    3

    ```
    """
    prepare = getattr(loss, "prepare", None)
    if not callable(prepare):
        return
    if _accepts(prepare, "embedding_dim"):
        prepare(targets=targets, num_classes=num_classes, embedding_dim=embedding_dim)
    else:
        prepare(targets=targets, num_classes=num_classes)


def _accepts(function: Any, keyword: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: assume the old form
        return False
    return any(
        parameter.kind is parameter.VAR_KEYWORD
        or (parameter.name == keyword and parameter.kind is not parameter.POSITIONAL_ONLY)
        for parameter in parameters
    )


def loss_parameters(loss: Any) -> list[Any]:
    """The trainable parameters a loss owns (`[]` for most losses; proxies, a weight matrix, …).

    ```pycon
    >>> import torch
    >>> loss_parameters(torch.nn.L1Loss()), [tuple(p.shape) for p in loss_parameters(torch.nn.Linear(2, 3))]
    ([], [(3, 2), (3,)])

    ```
    """
    parameters = getattr(loss, "parameters", None)
    if not callable(parameters):
        return []
    return [parameter for parameter in parameters() if parameter.requires_grad]


def set_scan_targets(loss: Any, scan: bool) -> None:
    """Tell a loss that declares `scan_targets` whether to scan its targets' values on each call."""
    if hasattr(loss, "scan_targets"):
        loss.scan_targets = scan


def tuple_counts(loss: Any) -> tuple[Tensor, Tensor] | None:
    """`(tuples, active)` of a metric loss's last call, or `None` if it does not count them."""
    if hasattr(loss, "last_num_tuples") and hasattr(loss, "last_num_active"):
        return loss.last_num_tuples, loss.last_num_active
    return None


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
    lossforge.contract.ContractError: focal has an invalid prior for 'gamma' in its search space: low must be < high, got low=5.0, high=0.0

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


# -- which task a loss trains ---------------------------------------------------------------------------


def training_task(loss_tasks: Iterable[str], dataset_task: str) -> Task | None:
    """The task a loss declaring `loss_tasks` trains on a dataset of `dataset_task`, or `None`.

    A loss trains its dataset's own task if it declares it; a metric loss also trains an embedding on
    any class-labelled dataset ([CLASS_LABEL_TASKS][lossforge.contract.CLASS_LABEL_TASKS]).

    ```pycon
    >>> training_task(("regression",), "regression")
    <Task.REGRESSION: 'regression'>
    >>> training_task(("multiclass",), "regression") is None
    True

    ```
    """
    declared = set(loss_tasks)
    return next((task for task in trainable_tasks(dataset_task) if task in declared), None)


def trainable_tasks(dataset_task: str) -> tuple[Task, ...]:
    """The tasks a loss can train on a dataset of `dataset_task`, preferred first: the dataset's own,
    then metric learning on class labels.

    ```pycon
    >>> trainable_tasks("binary")
    (<Task.BINARY: 'binary'>, <Task.METRIC: 'metric'>)

    ```
    """
    task = Task(dataset_task)
    return (task, Task.METRIC) if task in CLASS_LABEL_TASKS else (task,)


# -- shared vocabulary ------------------------------------------------------------------------------------


def normalize_distribution(name: str) -> str:
    """A distribution name the way pip compares them: case, `-`, `_` and `.` do not matter.

    ```pycon
    >>> normalize_distribution("Lossforge_Extras")
    'lossforge-extras'

    ```
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def did_you_mean(name: str, options: Iterable[str], *, n: int = 3) -> str:
    """`" Did you mean 'x'?"` (or `'x' or 'y'`) for the close matches of `name`, else `""`.

    ```pycon
    >>> did_you_mean("gamme", ["gamma", "alpha"])
    " Did you mean 'gamma'?"
    >>> did_you_mean("zzz", ["gamma"])
    ''

    ```
    """
    close = difflib.get_close_matches(name, list(options), n=n, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(option) for option in close)}?" if close else ""


def shape(tensor: Tensor) -> str:
    """A tensor's shape the way error messages print it, `(8, 5)` — shared by losses and miners.

    ```pycon
    >>> import torch
    >>> shape(torch.zeros(8, 5)), shape(torch.zeros(3))
    ('(8, 5)', '(3,)')

    ```
    """
    return "(" + ", ".join(str(d) for d in tensor.shape) + ("," if tensor.dim() == 1 else "") + ")"


_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Switches:
    """lossforge's environment switches, parsed in one place.

    * `LOSSFORGE_DISABLE_PLUGINS=1` — only lossforge's own components are discovered;
    * `LOSSFORGE_BLOCK_PLUGINS=pkg_a,pkg_b` — components from these distributions are ignored;
    * `LOSSFORGE_TRACEBACK=1` — errors show their traceback instead of one paragraph;
    * `LOSSFORGE_ALLOW_TARGETS=1` — any `_target_` in the composed config is allowed (`config_checks`).

    ```pycon
    >>> switches = Switches.read({"LOSSFORGE_BLOCK_PLUGINS": "Foo_Bar, baz", "LOSSFORGE_TRACEBACK": "1"})
    >>> sorted(switches.blocked_plugins), switches.traceback, switches.disable_plugins  # a set's order varies
    (['baz', 'foo-bar'], True, False)

    ```
    """

    disable_plugins: bool = False
    blocked_plugins: frozenset[str] = frozenset()
    traceback: bool = False
    allow_targets: bool = False

    @classmethod
    def read(cls, environment: Mapping[str, str] | None = None) -> Switches:
        """Parse the switches from `environment` (default: this process's)."""
        env = os.environ if environment is None else environment
        blocked = env.get("LOSSFORGE_BLOCK_PLUGINS", "").split(",")
        return cls(
            disable_plugins=env.get("LOSSFORGE_DISABLE_PLUGINS", "").strip().lower() in _TRUE,
            blocked_plugins=frozenset(normalize_distribution(name.strip()) for name in blocked if name.strip()),
            traceback=env.get("LOSSFORGE_TRACEBACK", "").strip().lower() in _TRUE,
            allow_targets=env.get("LOSSFORGE_ALLOW_TARGETS", "").strip().lower() in _TRUE,
        )

    def admits(self, distribution: str | None) -> bool:
        """Whether components from `distribution` are discovered under these switches."""
        normalized = normalize_distribution(distribution or "")
        if self.disable_plugins and normalized != OWN_DISTRIBUTION:
            return False
        return normalized not in self.blocked_plugins


OWN_DISTRIBUTION = "lossforge"
"""The distribution that provides lossforge's own components."""
