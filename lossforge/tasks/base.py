"""What a task means for training, evaluation and data — one `TaskSpec` subclass per task.

Everything that used to be an `if task == ...` branch somewhere is a method here: the size of the
model's head, how outputs are read (the prediction rule), how targets are encoded for a loss, which
metrics are computed, which plots are drawn, what valid targets look like, and the toy inputs the
contract kit feeds a loss. The training module, the data validators and the contract kit ask the spec
([lossforge.tasks.spec_for][]) instead of comparing strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lossforge.contract import Task

if TYPE_CHECKING:
    import torchmetrics
    from matplotlib.figure import Figure

# Every metric is built with ``sync_on_compute=False``: under DDP every process evaluates the whole val/test
# split (lossforge.distributed), so a metric must not sum its state over the processes — it would count
# every sample once per process.


class TaskSpec:
    """The meaning of one [Task][lossforge.contract.Task]; subclasses override what differs.

    Attributes:
        task: the task this spec describes.
        selection_metric, higher_is_better: what hyper-parameters are tuned on (`val/<metric>`): a
            metric every loss of the task is judged by alike — never the training loss, which differs
            between losses.
        class_labels: targets are one class index per sample (a metric loss can embed them, splits are
            stratified by class, a test class never seen in training cannot be predicted).
        stratified: splits keep each class's share (class-labelled and multilabel data).
        embedding: the model outputs embeddings: a miner may choose the loss's tuples, evaluation is by
            retrieval over a whole split ([evaluate_embeddings][lossforge.tasks.base.TaskSpec.evaluate_embeddings])
            instead of per-batch metrics, and the model needs an embedding head.
        baseline: the loss (`loss+miner` for metric learning) every other is judged against by
            `lossforge compare` and `lossforge benchmark` when the sweep trained it: the standard loss of
            the task.
        metric_bounds: the range of each metric (`(low, high)`, `None`: unbounded; names match with
            `fnmatch`), so that a comparison shows confidence intervals within it.
    """

    task: ClassVar[Task]
    selection_metric: ClassVar[str] = "f1_macro"
    """The validation metric a tuning protocol selects hyper-parameters on, and whether higher is better."""
    higher_is_better: ClassVar[bool] = True
    class_labels: ClassVar[bool] = False
    stratified: ClassVar[bool] = False
    embedding: ClassVar[bool] = False
    baseline: ClassVar[str] = "cross_entropy"
    """The loss (or `loss+miner`) a comparison judges the others against when the sweep trained it."""
    metric_bounds: ClassVar[Mapping[str, tuple[float | None, float | None]]] = {
        "accuracy": (0.0, 1.0),
        "subset_accuracy": (0.0, 1.0),
        "f1*": (0.0, 1.0),
        "recall*": (0.0, 1.0),
        "precision*": (0.0, 1.0),
        "auroc": (0.0, 1.0),
        "map_at_r": (0.0, 1.0),
        "knn_accuracy": (0.0, 1.0),
        "ece": (0.0, 1.0),
        "nll": (0.0, None),
        "mae": (0.0, None),
        "rmse": (0.0, None),
    }
    r"""Each metric's range: fractions in $[0, 1]$, errors and likelihoods $\ge 0$."""

    def bounds(self, metric: str) -> tuple[float | None, float | None]:
        """The range of `metric` (`test/f1_macro`, `test/recall/3`); `(None, None)` when it is not declared.

        Examples:
            >>> from lossforge.tasks import spec_for
            >>> spec_for("multiclass").bounds("test/recall/3"), spec_for("regression").bounds("val/mae")
            ((0.0, 1.0), (0.0, None))
        """
        from fnmatch import fnmatchcase

        name = metric.split("/")[1] if metric.count("/") >= 1 else metric
        return next(
            (bounds for pattern, bounds in self.metric_bounds.items() if fnmatchcase(name, pattern)), (None, None)
        )

    # -- the model's side ---------------------------------------------------------------------------
    def read_outputs(self, outputs: Tensor, num_outputs: int) -> Tensor:
        """The model's `(N, num_outputs)` outputs as the loss and metrics take them (default: as is)."""
        return outputs

    def loss_target(self, targets: Tensor, *, encoding: str) -> Tensor:
        """The dataset's targets as the loss takes them; `encoding` is the loss's
        `binary_target_encoding` (only binary targets differ). Default: unchanged."""
        return targets

    # -- evaluation -----------------------------------------------------------------------------------
    def metrics(self, num_outputs: int, *, stage: str) -> torchmetrics.MetricCollection:
        """The val/test metrics (`stage` is `"val"` or `"test"`); a vector-valued metric is logged per
        class (`test/recall/<class>`). Default: none."""
        import torchmetrics

        return torchmetrics.MetricCollection({})

    def update(self, metrics: torchmetrics.MetricCollection, outputs: Tensor, targets: Tensor) -> Tensor | None:
        """Feed one batch of read outputs (float32, detached) to `metrics`; return the batch's negative
        log-likelihood of the predicted probabilities when the task has one (logged as `nll`)."""
        return None

    def evaluate_embeddings(self, embeddings: Tensor, labels: Tensor, *, cosine: bool) -> dict[str, float]:
        """Metrics of a whole split's outputs at once (tasks with `embedding`). Default: none."""
        return {}

    def figures(self, outputs: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, Figure]:
        """Plots of the test predictions, `{file name: figure}`."""
        return {}

    # -- data -------------------------------------------------------------------------------------------
    def check_num_outputs(self, num_outputs: int) -> str | None:
        """What is wrong with a dataset's `num_outputs` for this task, or `None`."""
        return None

    def num_class_names(self, num_outputs: int) -> int:
        """How many `class_names` a dataset of this task names (0: none)."""
        return 0

    def check_targets(self, targets: Tensor, num_outputs: int) -> str | None:
        """What is wrong with a split's targets (dtype, shape, values), phrased to finish
        `"<dataset>, <split>: "`, or `None` when they are valid."""
        raise NotImplementedError

    def example_inputs(
        self, *, batch: int, num_classes: int, dim: int, dtype: torch.dtype, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """A valid toy `(prediction, target)` for a loss of this task (see `lossforge.testing`)."""
        raise NotImplementedError


def shuffled_classes(batch: int, count: int, generator: torch.Generator) -> Tensor:
    """`batch` round-robin labels over `count` classes, shuffled: each class gets `batch // count`
    members or one more.

    ```pycon
    >>> sorted(shuffled_classes(5, 2, torch.Generator().manual_seed(0)).tolist())
    [0, 0, 0, 1, 1]

    ```
    """
    return (torch.arange(batch) % count)[torch.randperm(batch, generator=generator)]


def wrong_dtype(targets: Tensor, dtype: torch.dtype, task: Task, fix: str) -> str | None:
    """`"<task> targets must be <dtype>, got <dtype>; <fix>."`, or `None` when the dtype is right."""
    if targets.dtype == dtype:
        return None
    return f"{task} targets must be {dtype}, got {targets.dtype}; {fix}."


def count_non_finite(values: Tensor) -> str | None:
    """`"2 NaN and 1 infinite value(s) out of 12"`, or `None` when every value is finite.

    ```pycon
    >>> count_non_finite(torch.tensor([1.0, float("nan")]))
    '1 NaN and 0 infinite value(s) out of 2'

    ```
    """
    nan = int(torch.isnan(values).sum())
    inf = int(torch.isinf(values).sum())
    if nan == 0 and inf == 0:
        return None
    return f"{nan} NaN and {inf} infinite value(s) out of {values.numel()}"


def class_index_problem(targets: Tensor, task: Task, high: int, fix: str) -> str | None:
    """What is wrong with `(N,)` int64 class indices in `[0, high)`, or `None`."""
    problem = wrong_dtype(targets, torch.int64, task, fix)
    if problem:
        return problem
    if targets.dim() != 1:
        return f"{task} targets must have shape (N,), got {tuple(targets.shape)}."
    outside = (targets < 0) | (targets >= high)
    if outside.any():
        return (
            f"{task} targets must be class indices in [0, {high}), got {int(outside.sum())} "
            f"value(s) outside it (smallest {int(targets.min())}, largest {int(targets.max())})."
        )
    return None


def float_target_problem(targets: Tensor, task: Task) -> str | None:
    """What is wrong with float32, finite targets, or `None`."""
    problem = wrong_dtype(targets, torch.float32, task, "convert with targets.float()")
    if problem:
        return problem
    bad = count_non_finite(targets)
    return f"targets contain {bad}; drop these samples or impute their targets." if bad else None
