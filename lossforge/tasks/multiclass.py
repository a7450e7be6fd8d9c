"""Multiclass classification: C logits per sample, one class index per target; softmax on top."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn import functional as F

from lossforge.contract import Task
from lossforge.tasks.base import TaskSpec, class_index_problem, shuffled_classes

if TYPE_CHECKING:
    import torchmetrics
    from matplotlib.figure import Figure


class MulticlassSpec(TaskSpec):
    """Prediction rule: the arg-max class; probabilities are the softmax of the logits.

    On test, recall is also computed per class (logged as `test/recall/<class>`).
    """

    task = Task.MULTICLASS
    selection_metric = "f1_macro"  # every class counts alike: accuracy hides minority classes
    class_labels = True
    stratified = True

    def metrics(self, num_outputs: int, *, stage: str) -> torchmetrics.MetricCollection:
        import torchmetrics
        from torchmetrics import classification

        metrics: dict[str, torchmetrics.Metric | torchmetrics.MetricCollection] = {
            "accuracy": classification.MulticlassAccuracy(num_outputs, average="micro", sync_on_compute=False),
            "f1_macro": classification.MulticlassF1Score(num_outputs, average="macro", sync_on_compute=False),
            "ece": classification.MulticlassCalibrationError(num_outputs, n_bins=15, sync_on_compute=False),
        }
        if stage == "test":
            metrics["recall"] = classification.MulticlassRecall(num_outputs, average="none", sync_on_compute=False)
        return torchmetrics.MetricCollection(metrics)

    def update(self, metrics: torchmetrics.MetricCollection, outputs: Tensor, targets: Tensor) -> Tensor | None:
        metrics.update(outputs.softmax(dim=-1), targets)  # (N, C) probabilities
        return F.cross_entropy(outputs, targets)

    def figures(self, outputs: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, Figure]:
        from lossforge.evaluation import plots

        confidence, predicted = outputs.softmax(dim=-1).max(dim=-1)
        return {
            "confusion_matrix.png": plots.confusion_matrix_figure(predicted, targets, class_names),
            "reliability.png": plots.reliability_figure(confidence, predicted == targets),
        }

    def num_class_names(self, num_outputs: int) -> int:
        return num_outputs

    def check_targets(self, targets: Tensor, num_outputs: int) -> str | None:
        fix = "store class indices (not one-hot rows) with targets.long()"
        return class_index_problem(targets, self.task, num_outputs, fix)

    def example_inputs(
        self, *, batch: int, num_classes: int, dim: int, dtype: torch.dtype, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        prediction = torch.randn(batch, num_classes, generator=generator, dtype=dtype)  # (N, C) logits
        return prediction, shuffled_classes(batch, num_classes, generator)  # (N,) int64, every class if it fits
