"""The adapter, the one place that reads a plugin through `getattr`: a loss's or a miner's traits with the
Protocols' defaults filled in, the checks that a component class meets its kind's contract, and the optional
hooks (`prepare`, `scan_targets`, tuple counts) called when a plugin has them.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lossforge.contract.priors import _is_number
from lossforge.contract.tasks import DATASET_TASKS, TARGET_ENCODINGS, TASKS, TUPLE_KINDS, Task
from lossforge.contract.vocabulary import MODEL_INPUTS, ContractError, _label, did_you_mean

if TYPE_CHECKING:
    from torch import Tensor


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
    lossforge.contract.vocabulary.ContractError: dataset toy declares task 'multiclas'. Did you mean 'multiclass'? ...

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
