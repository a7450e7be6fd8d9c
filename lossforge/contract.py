"""The plugin contract, written down once: the tasks, what lossforge reads from a loss or a miner, and
the vocabulary every module shares (environment switches, name normalising, "did you mean").

A loss or a miner is a plain ``torch.nn.Module`` subclass; it need not import lossforge. The
:class:`LossPlugin` and :class:`MinerPlugin` Protocols list **every** attribute and method the framework
reads from one, each with its meaning. Only ``tasks`` (a loss) and ``tuple_kind`` (a miner) are
required; every other member is optional, and :func:`loss_traits` / :func:`miner_traits` — the one
place that reads a plugin through ``getattr`` — fill in the documented default for a plugin that does
not declare it. The contract kit (:mod:`lossforge.testing`) checks the same Protocols, so a plugin that
passes the kit trains.

This module imports neither torch nor any plugin, so the command line can use it while staying fast.

>>> Task("multiclass") is Task.MULTICLASS, Task.METRIC == "metric"
(True, True)
>>> training_task(("metric",), Task.MULTICLASS)
<Task.METRIC: 'metric'>
>>> did_you_mean("focall", ["focal", "l1", "bce"])
" Did you mean 'focal'?"
"""

from __future__ import annotations

import difflib
import enum
import inspect
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from torch import Tensor


class Task(enum.StrEnum):
    """What a dataset asks of a model, and what a loss can train.

    A ``StrEnum``: each member *is* its string (``Task.BINARY == "binary"``), so configs, MLflow tags and
    plugins that declare ``tasks = ("regression",)`` as plain strings need no conversion. What a task
    means for training — output head, prediction rule, metrics, target encoding, plots — lives in one
    ``TaskSpec`` per task (:mod:`lossforge.tasks`).
    """

    REGRESSION = "regression"  #: real-valued targets (N,) or (N, D)
    BINARY = "binary"  #: one score per sample; targets 0/1
    MULTICLASS = "multiclass"  #: C logits per sample; targets are class indices
    MULTILABEL = "multilabel"  #: K independent yes/no labels per sample
    METRIC = "metric"  #: an embedding trained from class labels, evaluated by retrieval


#: Every task, in declaration order.
TASKS: tuple[Task, ...] = tuple(Task)
#: The tasks a dataset can declare (a metric loss trains on a class-labelled dataset).
DATASET_TASKS: tuple[Task, ...] = (Task.REGRESSION, Task.BINARY, Task.MULTICLASS, Task.MULTILABEL)
#: Dataset tasks whose targets are one class label per sample, so a metric loss can embed them.
CLASS_LABEL_TASKS: tuple[Task, ...] = (Task.BINARY, Task.MULTICLASS)

TupleKind = Literal["pair", "triplet"]
TUPLE_KINDS: tuple[str, ...] = ("pair", "triplet")
TargetEncoding = Literal["zero_one", "plus_minus_one"]
TARGET_ENCODINGS: tuple[str, ...] = ("zero_one", "plus_minus_one")

LOSS_GROUP = "lossforge.losses"
MINER_GROUP = "lossforge.miners"
PLUGIN_HELP = (
    "Losses and miners come from Python entry points in the groups 'lossforge.losses' and "
    "'lossforge.miners': `pip install` a package that declares them (see plugins/README.md), "
    "then `lossforge list` shows it."
)


class ContractError(TypeError):
    """A class that does not meet the loss or miner contract; the message names it and the rule.

    ``rule`` is the broken promise alone (``"must declare …"``), for callers that name the class their way.
    """

    def __init__(self, subject: str, rule: str) -> None:
        super().__init__(f"{subject} {rule}")
        self.rule = rule


# -- the Protocols -----------------------------------------------------------------------------------


class LossPlugin(Protocol):
    """Everything lossforge reads from a loss. ``tasks`` is required; the rest is optional.

    Called ``loss(prediction, target)`` for the supervised tasks and ``loss(embeddings, labels,
    indices_tuple)`` for ``"metric"`` (``indices_tuple`` is a miner's output or ``None``: every
    pair/triplet of the batch). Returns a scalar for ``reduction="mean" | "sum"`` and per-sample (per pair
    or triplet for metric losses) values for ``"none"``. Constructor parameters are keyword-only, each
    with a default and a type annotation, and include ``reduction``.
    """

    #: Required. The tasks this loss can train, drawn from :data:`TASKS` (plain strings work too).
    tasks: ClassVar[tuple[str, ...]]
    #: The name used in messages; default: the class name.
    name: ClassVar[str]
    #: Binary targets as ``"zero_one"`` (default) or ``"plus_minus_one"`` (hinge-style losses).
    binary_target_encoding: ClassVar[str]
    #: ``True`` when ``"none"`` returns :math:`w_i \\ell_i` and ``"mean"`` is :math:`\\sum w_i \\ell_i /
    #: \\sum w_i` (class-weighted losses); default ``False``: ``"mean"`` is ``"none".mean()``.
    mean_is_weighted: bool
    #: Metric losses: ``"pair"`` or ``"triplet"``, the tuples a miner must hand it; default ``None``
    #: (the loss takes either, or no miner).
    tuple_kind: ClassVar[str | None]
    #: Metric losses: the distance the embeddings are compared with (``"euclidean"``, ``"cosine"``, …);
    #: a miner without its own uses it, and retrieval evaluation ranks by cosine when it is ``"cosine"``.
    distance: str | None
    #: Metric losses: the margin a miner without its own uses. Default ``None``.
    margin: float | None
    #: Whether the loss scans its targets' *values* (labels in {0, 1}, class indices in range) on every
    #: call. The framework sets it to ``False`` when the data were validated once up front; a loss that
    #: does not declare it is never told (its scans, if any, keep running).
    scan_targets: bool
    #: Metric losses: tuples in the last call and those with a non-zero loss (0-d int tensors), logged
    #: as ``train/tuples`` and ``train/active_fraction``. Optional.
    last_num_tuples: Tensor
    last_num_active: Tensor

    def prepare(self, *, targets: Tensor, num_classes: int) -> None:
        """Optional: called once with the training targets before training (e.g. class weights)."""

    def __call__(self, prediction: Tensor, target: Tensor, /, *args: Any) -> Tensor:
        """The loss value; see the class docstring for the call forms."""


class MinerPlugin(Protocol):
    """Everything lossforge reads from a miner. ``tuple_kind`` is required.

    Called ``miner(embeddings (N, D), labels (N,))`` under no gradient; returns int64 1-D index tensors:
    ``(anchor, positive, anchor, negative)`` for pairs, ``(anchor, positive, negative)`` for triplets.
    """

    #: Required. ``"pair"`` or ``"triplet"``.
    tuple_kind: ClassVar[str]
    #: The name used in messages; default: the class name.
    name: ClassVar[str]
    #: Optional constructor parameters. When the config leaves one ``None`` and the loss has it, the
    #: training pipeline passes the loss's value, so a loss and its miner share one margin and distance.
    margin: float | None
    distance: str | None

    def __call__(self, embeddings: Tensor, labels: Tensor, /) -> tuple[Tensor, ...]:
        """Index tuples into the batch."""


# -- the adapter: the one place that reads a plugin with defaults ---------------------------------------


@dataclass(frozen=True)
class LossTraits:
    """What a loss declares, with the Protocol's defaults filled in (see :class:`LossPlugin`)."""

    name: str
    tasks: tuple[Task, ...]
    binary_target_encoding: str = "zero_one"
    mean_is_weighted: bool = False
    tuple_kind: str | None = None
    distance: str | None = None
    margin: float | None = None
    has_prepare: bool = False
    counts_tuples: bool = False
    scans_targets: bool = False  # declares `scan_targets`, so it can be told the data were validated


@dataclass(frozen=True)
class MinerTraits:
    """What a miner declares, with the Protocol's defaults filled in (see :class:`MinerPlugin`)."""

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
    """Read a loss class or instance through :class:`LossPlugin`, with defaults for what it leaves out.

    Raises :class:`ContractError` for a missing or invalid ``tasks``, ``binary_target_encoding`` or
    ``tuple_kind``.

    >>> class Plain:  # a plugin that declares only what is required
    ...     tasks = ("regression",)
    >>> loss_traits(Plain).tasks, loss_traits(Plain).binary_target_encoding
    ((<Task.REGRESSION: 'regression'>,), 'zero_one')
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
    cls = loss if inspect.isclass(loss) else type(loss)
    return LossTraits(
        name=getattr(loss, "name", cls.__name__),
        tasks=tasks,
        binary_target_encoding=encoding,
        mean_is_weighted=bool(getattr(loss, "mean_is_weighted", False)),
        tuple_kind=tuple_kind,
        distance=getattr(loss, "distance", None),
        margin=getattr(loss, "margin", None),
        has_prepare=callable(getattr(loss, "prepare", None)),
        counts_tuples=hasattr(loss, "last_num_tuples") and hasattr(loss, "last_num_active"),
        scans_targets=hasattr(loss, "scan_targets"),
    )


def miner_traits(miner: Any) -> MinerTraits:
    """Read a miner class or instance through :class:`MinerPlugin`; :class:`ContractError` if invalid.

    >>> class Plain:
    ...     tuple_kind = "triplet"
    >>> miner_traits(Plain).margin is None
    True
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
    """Raise :class:`ContractError` unless ``obj`` is an ``nn.Module`` subclass declaring its ``kind``'s
    required attributes (``"loss"``: ``tasks``; ``"miner"``: ``tuple_kind``)."""
    from torch import nn  # deferred: listing names must not import torch

    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise ContractError(f"{kind} component", f"must be a torch.nn.Module subclass, got {obj!r}")
    if kind == "loss":
        loss_traits(obj)
    else:
        miner_traits(obj)


def prepare_loss(loss: Any, *, targets: Tensor, num_classes: int) -> None:
    """Call the loss's optional ``prepare`` hook with the training targets."""
    prepare = getattr(loss, "prepare", None)
    if callable(prepare):
        prepare(targets=targets, num_classes=num_classes)


def set_scan_targets(loss: Any, scan: bool) -> None:
    """Tell a loss that declares ``scan_targets`` whether to scan its targets' values on each call."""
    if hasattr(loss, "scan_targets"):
        loss.scan_targets = scan


def tuple_counts(loss: Any) -> tuple[Tensor, Tensor] | None:
    """``(tuples, active)`` of a metric loss's last call, or ``None`` if it does not count them."""
    if hasattr(loss, "last_num_tuples") and hasattr(loss, "last_num_active"):
        return loss.last_num_tuples, loss.last_num_active
    return None


# -- which task a loss trains ---------------------------------------------------------------------------


def training_task(loss_tasks: Iterable[str], dataset_task: str) -> Task | None:
    """The task a loss declaring ``loss_tasks`` trains on a dataset of ``dataset_task``, or ``None``.

    A loss trains its dataset's own task if it declares it; a metric loss also trains an embedding on
    any class-labelled dataset (:data:`CLASS_LABEL_TASKS`).

    >>> training_task(("regression",), "regression")
    <Task.REGRESSION: 'regression'>
    >>> training_task(("multiclass",), "regression") is None
    True
    """
    declared = set(loss_tasks)
    return next((task for task in trainable_tasks(dataset_task) if task in declared), None)


def trainable_tasks(dataset_task: str) -> tuple[Task, ...]:
    """The tasks a loss can train on a dataset of ``dataset_task``, preferred first: the dataset's own,
    then metric learning on class labels.

    >>> trainable_tasks("binary")
    (<Task.BINARY: 'binary'>, <Task.METRIC: 'metric'>)
    """
    task = Task(dataset_task)
    return (task, Task.METRIC) if task in CLASS_LABEL_TASKS else (task,)


def serves(loss: Any, dataset_task: str) -> bool:
    """Whether a loss (class or instance) can train on a dataset of ``dataset_task``."""
    return training_task(loss_traits(loss).tasks, dataset_task) is not None


# -- shared vocabulary ------------------------------------------------------------------------------------


def normalize_distribution(name: str) -> str:
    """A distribution name the way pip compares them: case, ``-``, ``_`` and ``.`` do not matter.

    >>> normalize_distribution("Lossforge_Extras")
    'lossforge-extras'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def did_you_mean(name: str, options: Iterable[str], *, n: int = 3) -> str:
    """``" Did you mean 'x'?"`` (or ``'x' or 'y'``) for the close matches of ``name``, else ``""``.

    >>> did_you_mean("gamme", ["gamma", "alpha"])
    " Did you mean 'gamma'?"
    >>> did_you_mean("zzz", ["gamma"])
    ''
    """
    close = difflib.get_close_matches(name, list(options), n=n, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(option) for option in close)}?" if close else ""


_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Switches:
    """lossforge's environment switches, parsed in one place.

    * ``LOSSFORGE_DISABLE_PLUGINS=1`` — only lossforge's own components are discovered;
    * ``LOSSFORGE_BLOCK_PLUGINS=pkg_a,pkg_b`` — components from these distributions are ignored;
    * ``LOSSFORGE_TRACEBACK=1`` — errors show their traceback instead of one paragraph;
    * ``LOSSFORGE_ALLOW_TARGETS=1`` — a ``_target_`` override on the command line is allowed.

    >>> Switches.read({"LOSSFORGE_BLOCK_PLUGINS": "Foo_Bar, baz", "LOSSFORGE_TRACEBACK": "1"})
    Switches(disable_plugins=False, blocked_plugins=frozenset({'baz', 'foo-bar'}), traceback=True, allow_targets=False)
    """

    disable_plugins: bool = False
    blocked_plugins: frozenset[str] = frozenset()
    traceback: bool = False
    allow_targets: bool = False

    @classmethod
    def read(cls, environment: Mapping[str, str] | None = None) -> Switches:
        """Parse the switches from ``environment`` (default: this process's)."""
        env = os.environ if environment is None else environment
        blocked = env.get("LOSSFORGE_BLOCK_PLUGINS", "").split(",")
        return cls(
            disable_plugins=env.get("LOSSFORGE_DISABLE_PLUGINS", "").strip().lower() in _TRUE,
            blocked_plugins=frozenset(normalize_distribution(name.strip()) for name in blocked if name.strip()),
            traceback=env.get("LOSSFORGE_TRACEBACK", "").strip().lower() in _TRUE,
            allow_targets=env.get("LOSSFORGE_ALLOW_TARGETS", "").strip().lower() in _TRUE,
        )

    def admits(self, distribution: str | None) -> bool:
        """Whether components from ``distribution`` are discovered under these switches."""
        normalized = normalize_distribution(distribution or "")
        if self.disable_plugins and normalized != OWN_DISTRIBUTION:
            return False
        return normalized not in self.blocked_plugins


#: The distribution that provides lossforge's own components.
OWN_DISTRIBUTION = "lossforge"
