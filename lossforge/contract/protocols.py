"""The Protocols: every attribute and method lossforge reads from a loss, a miner, a dataset and a model,
each with its meaning. Only `tasks` (a loss) and `tuple_kind` (a miner) are required;
[loss_traits][lossforge.contract.traits.loss_traits] fills in the defaults of the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from torch import Tensor


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
