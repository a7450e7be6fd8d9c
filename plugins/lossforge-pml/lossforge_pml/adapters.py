r"""lossforge components generated from pytorch-metric-learning's (PML's) loss and miner classes.

One thin base class per kind — `PMLLoss`, `PMLMiner` — holds what every adapter does; the
component for a PML class is a subclass made by `make_component` from PML's constructor signature:
keyword-only parameters with PML's defaults, typed from PML's annotations or defaults, so that each one is
a typed Hydra option (`loss=pml_arcface_loss loss.scale=30`).

What an adapter changes, and why (each is a constructor argument):

* `reduction`: `"none"` returns every term PML's loss computes — per pair, triplet, sample or proxy;
  for a loss with several terms (a contrastive loss's positive and negative pairs) all of them, one after
  the other; for a loss PML itself reduces over the batch (`already_reduced`) that one value —
  `"sum"` their sum and `"mean"` their mean, as lossforge's contract has it. `"pml"` is PML's own
  default reducer (`AvgNonZeroReducer` for the triplet margin loss, a mean per term for the contrastive
  loss, …): the value PML returns, to reproduce PML's numbers.
* `distance`: PML takes a distance *object*, which a config cannot hold; here it is a string:
  `"default"` (the class's own, e.g. the normalised Euclidean `LpDistance()` for the triplet margin
  loss, `CosineSimilarity()` for ArcFace), `"lp"` (`LpDistance()`), `"cosine"`
  (`CosineSimilarity()`), `"dot"` (`DotProductSimilarity()`). A class that requires its own
  distance refuses the others, naming it. Reducers and regularizers are left at PML's defaults.
* Class counts and embedding widths (`num_classes`, `embedding_size`, `descriptors_dim`) come from
  the data: a learnable loss (class proxies or a weight matrix) is built in `prepare`, when lossforge
  passes them; its parameters then train in lossforge's loss parameter group.
* A batch of fewer than two samples gives 0 (lossforge's contract: a last batch of one sample carries no
  pair or triplet), except for the learnable losses, which compare that sample with the class proxies.

Examples:
    >>> import torch
    >>> from lossforge_pml.generated import pml_triplet_margin_loss
    >>> loss = pml_triplet_margin_loss(margin=0.2, reduction="none")
    >>> embeddings, labels = torch.eye(4)[:, :3], torch.tensor([0, 0, 1, 1])
    >>> loss(embeddings, labels).shape  # one value per triplet (a, p, n): 4 anchors x 1 positive x 2 negatives
    torch.Size([8])
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from lossforge_pml.table import (
    INTEGER_PARAMETERS,
    INTEGER_PARAMETERS_OF,
    MINIMUM_PML,
    SIZE_PARAMETERS,
    Spec,
    components,
)

REDUCTIONS = ("mean", "sum", "none", "pml")
DISTANCES = ("default", "lp", "cosine", "dot")
ANNOTATIONS: dict[str, Any] = {
    "triplets_per_anchor": str | int,  # "all" or a number of triplets per anchor
    "allowed_pos_range": list[float] | None,  # (low, high) of the positive distances kept
    "allowed_neg_range": list[float] | None,
}
"""Annotations for parameters PML leaves unannotated whose defaults do not say their type."""
GENERATED_MODULE = "lossforge_pml.generated"
"""The module that serves the generated classes (`lossforge_pml.generated:<registry name>`)."""


class PMLMissingError(ImportError):
    """pytorch-metric-learning is not installed, or its installed version lacks the adapted class."""


def load_pml_class(name: str) -> type:
    """The PML class that component `name` adapts; `PMLMissingError` with what to install."""
    known = components()
    if name not in known:
        raise AttributeError(f"lossforge-pml has no component {name!r}")
    class_name, spec = known[name]
    module = f"pytorch_metric_learning.{'losses' if spec.kind == 'loss' else 'miners'}"
    try:
        if spec.kind == "loss":
            from pytorch_metric_learning import losses as library
        else:
            from pytorch_metric_learning import miners as library
    except ModuleNotFoundError as error:
        raise PMLMissingError(
            f"{name} adapts {module}.{class_name}, but pytorch-metric-learning is not "
            f"installed: `pip install 'pytorch-metric-learning>={MINIMUM_PML}'` ({error})"
        ) from error
    found = getattr(library, class_name, None)
    if found is None:
        from importlib import metadata

        installed = metadata.version("pytorch-metric-learning")
        raise PMLMissingError(
            f"{name} adapts {module}.{class_name}, which pytorch-metric-learning "
            f"{installed} does not have (it arrived in {spec.since}): "
            f"`pip install -U 'pytorch-metric-learning>={spec.since}'`"
        )
    return found


def _distance_object(choice: str) -> Any:
    from pytorch_metric_learning import distances

    return {"lp": distances.LpDistance, "cosine": distances.CosineSimilarity, "dot": distances.DotProductSimilarity}[
        choice
    ]()


def _lossforge_distance(module: Any) -> str | None:
    """lossforge's name for the distance a PML module compares embeddings with: `"cosine"` for cosine
    similarity and for the Euclidean distance of normalised embeddings (the same ranking), else `None`."""
    from pytorch_metric_learning import distances

    distance = getattr(module, "distance", None)
    if isinstance(distance, distances.CosineSimilarity):
        return "cosine"
    if isinstance(distance, distances.LpDistance) and distance.normalize_embeddings and distance.p == 2:
        return "cosine"
    return None


def _check_inputs(name: str, embeddings: Any, labels: Any) -> None:
    good = (
        isinstance(embeddings, Tensor)
        and isinstance(labels, Tensor)
        and embeddings.dim() == 2
        and embeddings.is_floating_point()
        and labels.dim() == 1
        and labels.shape[0] == embeddings.shape[0]
        and not labels.is_floating_point()
    )
    if not good:
        got = ", ".join(
            f"{tuple(value.shape)} {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
            for value in (embeddings, labels)
        )
        raise ValueError(f"{name}: expected embeddings (N, D) floating and integer labels (N,), got {got}")


class PMLLoss(nn.Module):
    """The base of every generated loss: builds the PML loss, calls it, reduces its terms lossforge's way."""

    tasks: ClassVar[tuple[str, ...]] = ("metric",)
    name: ClassVar[str] = "pml"
    pml_class: ClassVar[type]
    size_parameters: ClassVar[Mapping[str, str]] = {}
    """PML constructor parameter -> "classes" | "embedding", filled from `prepare` (empty: not learnable)."""

    def __init__(self, *, reduction: str = "mean", distance: str = "default", **options: Any) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{self.name}: expected `reduction` in {list(REDUCTIONS)}, got {reduction!r}")
        if distance not in DISTANCES:
            raise ValueError(f"{self.name}: expected `distance` in {list(DISTANCES)}, got {distance!r}")
        self.reduction, self.pml_distance, self.options = reduction, distance, options
        self.scan_targets = True
        self.num_classes: int | None = None
        self.embedding_dim: int | None = None
        self.pml: nn.Module | None = None
        if self.size_parameters:  # built in prepare(); build a small one now only to check the options
            with torch.random.fork_rng(devices=[]):  # ... without a draw from the run's generator
                probe = self._build(classes=2, embedding=2)
        else:
            self.pml = probe = self._build()
        self.distance = _lossforge_distance(probe)
        self.last_num_tuples = torch.zeros((), dtype=torch.int64)
        self.last_num_active = torch.zeros((), dtype=torch.int64)

    def _build(self, **sizes: int) -> nn.Module:
        arguments = dict(self.options)
        for parameter, size in self.size_parameters.items():
            arguments[parameter] = sizes[size]
        if self.pml_distance != "default":
            arguments["distance"] = _distance_object(self.pml_distance)
        if self.reduction != "pml":
            from pytorch_metric_learning.reducers import DoNothingReducer

            arguments["reducer"] = DoNothingReducer()
        try:
            return self.pml_class(**arguments)
        except (ValueError, TypeError, AssertionError, KeyError) as error:
            shown = {**self.options, "distance": self.pml_distance}
            raise ValueError(
                f"{self.name}: PML's {self.pml_class.__name__} refused {shown}: {type(error).__name__}: {error}"
            ) from error

    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        """A learnable loss creates its PML module (proxies or weights, `(num_classes, embedding_dim)`)."""
        if not self.size_parameters:
            return
        self.num_classes = int(num_classes)
        if embedding_dim is not None:
            self.embedding_dim = int(embedding_dim)
            self.pml = self._build(classes=self.num_classes, embedding=self.embedding_dim)

    def forward(self, embeddings: Tensor, labels: Tensor, indices_tuple: tuple[Tensor, ...] | None = None) -> Tensor:
        _check_inputs(self.name, embeddings, labels)
        if self.pml is None:  # learnable, and prepare() did not know the width: called outside lossforge's run
            self.embedding_dim = embeddings.shape[1]
            classes = self.num_classes or (int(labels.max()) + 1 if labels.numel() else 1)
            self.num_classes = classes
            self.pml = self._build(classes=classes, embedding=self.embedding_dim).to(embeddings.device)
        if self.size_parameters:
            self._check_sizes(embeddings, labels)
        if embeddings.shape[0] < 2 and not self.size_parameters:  # no pair, no triplet: 0 that backpropagates
            self._count(embeddings.new_zeros(0))
            return (embeddings * 0).sum() if self.reduction != "none" else embeddings.reshape(-1)[:0] * 0
        try:
            result = self.pml(embeddings, labels, indices_tuple)
        except (ValueError, AssertionError) as error:
            raise ValueError(f"{self.name} (PML's {self.pml_class.__name__}): {error}") from error
        if self.reduction == "pml":
            return result.to(embeddings.dtype)
        terms = [
            part["losses"].reshape(-1).to(embeddings.dtype)
            for part in result.values()
            if isinstance(part["losses"], Tensor)  # PML's `0` (a Python int) means "no term"
        ]
        values = torch.cat(terms) if terms else embeddings.reshape(-1)[:0] * 0  # (T,): every term
        self._count(values)
        if self.reduction == "none":
            return values
        if values.numel() == 0:
            return (embeddings * 0).sum()
        return values.sum() if self.reduction == "sum" else values.mean()

    def _count(self, values: Tensor) -> None:
        detached = values.detach()
        self.last_num_tuples = torch.tensor(detached.numel(), dtype=torch.int64, device=detached.device)
        self.last_num_active = (detached != 0).sum()

    def _check_sizes(self, embeddings: Tensor, labels: Tensor) -> None:
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"{self.name}: its {self.pml_class.__name__} was prepared for embeddings of width "
                f"{self.embedding_dim}, got {tuple(embeddings.shape)}"
            )
        if self.scan_targets and labels.numel():
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= (self.num_classes or 0):
                raise ValueError(
                    f"{self.name}: labels must be class indices in [0, {self.num_classes}) (the num_classes "
                    f"prepare() was given), got labels in [{low}, {high}]"
                )

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # A checkpoint of a loss prepared for other sizes must fail naming the loss and both shapes.
        own = {f"{prefix}pml.{key}": value for key, value in (self.pml.state_dict() if self.pml else {}).items()}
        for key, value in state_dict.items():
            if not (key.startswith(f"{prefix}pml.") and isinstance(value, Tensor)):
                continue
            if self.pml is None:
                raise ValueError(
                    f"{self.name}: the checkpoint holds {key} of shape {tuple(value.shape)}, but this loss was not "
                    f"prepared; call prepare(targets=..., num_classes=..., embedding_dim=...) before loading"
                )
            if key in own and own[key].shape != value.shape:
                raise ValueError(
                    f"{self.name}: the checkpoint's {key} has shape {tuple(value.shape)}, this loss's "
                    f"{tuple(own[key].shape)} (prepared for num_classes={self.num_classes}, embedding_dim="
                    f"{self.embedding_dim}); prepare it with the checkpoint's sizes"
                )
            if key in own and value.is_floating_point() and own[key].dtype != value.dtype:
                # PML casts its parameters to the embeddings' dtype on every call (P2SGrad renormalises them
                # too): restore them in the checkpoint's precision, not rounded through the fresh one's.
                self.pml.to(dtype=value.dtype)
                own = {f"{prefix}pml.{name}": tensor for name, tensor in self.pml.state_dict().items()}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, distance={self.pml_distance!r}, options={self.options}"


class PMLMiner(nn.Module):
    """The base of every generated miner: builds the PML miner, returns its tuples as int64 under no_grad."""

    tuple_kind: ClassVar[str]
    name: ClassVar[str] = "pml"
    pml_class: ClassVar[type]

    def __init__(self, *, distance: str = "default", **options: Any) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"{self.name}: expected `distance` in {list(DISTANCES)}, got {distance!r}")
        self.pml_distance, self.options = distance, options
        arguments = dict(options)
        if distance != "default":
            arguments["distance"] = _distance_object(distance)
        try:
            self.pml = self.pml_class(**arguments)
        except (ValueError, TypeError, AssertionError, KeyError) as error:
            raise ValueError(
                f"{self.name}: PML's {self.pml_class.__name__} refused {{**{options}, 'distance': {distance!r}}}: "
                f"{type(error).__name__}: {error}"
            ) from error

    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, ...]:
        _check_inputs(self.name, embeddings, labels)
        with torch.no_grad():
            tuples = self.pml(embeddings, labels)
        return tuple(indices.to(torch.int64) for indices in tuples)

    def extra_repr(self) -> str:
        return f"distance={self.pml_distance!r}, options={self.options}"


# -- generation -------------------------------------------------------------------------------------------

_GENERATED: dict[str, type] = {}


def make_component(name: str) -> type:
    """The lossforge component class for registry `name` (generated once per process)."""
    if name in _GENERATED:
        return _GENERATED[name]
    source = load_pml_class(name)
    class_name, spec = components()[name]
    parameters, sizes = constructor(source, class_name, spec)
    base: type[PMLLoss] | type[PMLMiner] = PMLLoss if spec.kind == "loss" else PMLMiner
    namespace: dict[str, Any] = {
        "__module__": GENERATED_MODULE,
        "__qualname__": name,
        "__doc__": _docstring(name, source, spec, sizes),
        "name": name,
        "pml_class": source,
        "search_space": dict(spec.search_space),
    }
    # A PML loss converts whatever a miner hands it (``convert_to_pairs`` / ``convert_to_triplets``): it takes
    # either kind, which lossforge spells `tuple_kind = None`. A miner declares what it mines.
    namespace["tuple_kind"] = spec.tuple_kind if spec.kind == "miner" else None
    if spec.kind == "loss":
        namespace["size_parameters"] = sizes
    generated = type(name, (base,), namespace)
    generated.__init__ = _init(base, name, parameters)  # type: ignore[misc]
    _GENERATED[name] = generated
    return generated


def _init(base: type, name: str, parameters: list[inspect.Parameter]) -> Any:
    def __init__(self: Any, **options: Any) -> None:
        accepted = {parameter.name for parameter in parameters}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise TypeError(f"{name}: unknown parameter(s) {unknown}; its parameters: {sorted(accepted)}")
        values = {parameter.name: parameter.default for parameter in parameters}
        initialize = vars(base)["__init__"]  # the base's own, not the generated one
        initialize(self, **{**values, **options})

    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = inspect.Signature([self_parameter, *parameters], return_annotation=None)  # type: ignore[attr-defined]
    __init__.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters} | {"return": None}
    __init__.__qualname__ = f"{name}.__init__"
    return __init__


def constructor(source: type, class_name: str, spec: Spec) -> tuple[list[inspect.Parameter], dict[str, str]]:
    """The generated constructor's keyword-only parameters (PML's own, typed, then `distance` and, for a
    loss, `reduction`) and the size parameters lossforge fills from the data."""
    found: dict[str, inspect.Parameter] = {}
    sizes: dict[str, str] = {}
    for parameter in _pml_parameters(source, spec):
        if parameter.name in SIZE_PARAMETERS and parameter.default is parameter.empty:
            sizes[parameter.name] = SIZE_PARAMETERS[parameter.name]
            continue
        default = spec.defaults.get(parameter.name, parameter.default)
        if default is parameter.empty:
            raise TypeError(
                f"lossforge-pml: PML's {class_name} requires {parameter.name!r}, which has no default here; "
                f"this adapter needs a default for it in lossforge_pml.table.SPECS"
            )
        annotation = _annotation(class_name, parameter, default)
        if annotation in (float,) and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        found[parameter.name] = inspect.Parameter(
            parameter.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )
    keyword = inspect.Parameter.KEYWORD_ONLY
    found["distance"] = inspect.Parameter(
        "distance", keyword, default="default", annotation=Literal["default", "lp", "cosine", "dot"]
    )
    if spec.kind == "loss":
        found["reduction"] = inspect.Parameter(
            "reduction", keyword, default="mean", annotation=Literal["mean", "sum", "none", "pml"]
        )
    return list(found.values()), sizes


def _pml_parameters(source: type, spec: Spec) -> list[inspect.Parameter]:
    """PML's named constructor parameters: the class's own, its parents' where it forwards `*args`, and
    the inherited ones the spec names."""
    collected: dict[str, inspect.Parameter] = {}
    inherited = set(spec.inherits)
    follow = True
    for cls in source.__mro__:
        if "__init__" not in vars(cls) or cls.__module__.split(".")[0] != "pytorch_metric_learning":
            continue
        signature = inspect.signature(vars(cls)["__init__"])
        own = list(signature.parameters.values())[1:]
        for parameter in own:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.name in collected:
                continue
            if follow or parameter.name in inherited:
                collected[parameter.name] = parameter
        follow = follow and any(parameter.kind is parameter.VAR_POSITIONAL for parameter in own)
    missing = inherited - set(collected)
    if missing:
        raise TypeError(f"lossforge-pml: PML's {source.__name__} has no parameters {sorted(missing)}")
    return list(collected.values())


def _annotation(class_name: str, parameter: inspect.Parameter, default: Any) -> Any:
    if parameter.name in ANNOTATIONS:
        return ANNOTATIONS[parameter.name]
    declared = parameter.annotation
    if declared in (int, float, bool, str):
        return declared | None if default is None else declared
    integer = parameter.name in INTEGER_PARAMETERS or parameter.name in INTEGER_PARAMETERS_OF.get(class_name, ())
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int if integer else float
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if default is None:  # "off" or "derived" (RankedListLoss's alpha = 1 + margin / 2)
        return int | None if integer else float | None
    raise TypeError(f"lossforge-pml: cannot type PML's {class_name}({parameter.name}={default!r}) for a config")


def _docstring(name: str, source: type, spec: Spec, sizes: Mapping[str, str]) -> str:
    module = source.__module__.rsplit(".", 1)[0]
    lines = [f"`{name}`: pytorch-metric-learning's `{module}.{source.__name__}` as a lossforge {spec.kind}."]
    if sizes:
        lines.append(f"Learnable: `{', '.join(sizes)}` come from the data, in `prepare`.")
    if spec.tuple_kind is not None and spec.kind == "miner":
        lines.append(f"It mines {spec.tuple_kind}s.")
    elif spec.tuple_kind is not None:
        lines.append(f"It computes over {spec.tuple_kind}s; PML converts a miner's other kind of tuples.")
    lines.append("See lossforge_pml.adapters for what the adapter changes (reduction, distance).")
    return "\n\n".join(lines)
