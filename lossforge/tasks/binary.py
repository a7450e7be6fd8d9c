"""Binary classification: one score per sample, targets 0/1 (or ±1 for losses that ask for it)."""

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


class BinarySpec(TaskSpec):
    """Prediction rule: positive when the score is > 0 (probability `sigmoid(score)` > 0.5).

    ```pycon
    >>> BinarySpec().loss_target(torch.tensor([0, 1]), encoding="plus_minus_one")
    tensor([-1.,  1.])

    ```
    """

    task = Task.BINARY
    baseline = "bce"
    class_labels = True
    stratified = True

    def read_outputs(self, outputs: Tensor, num_outputs: int) -> Tensor:
        return outputs.squeeze(-1)  # (N, 1) -> (N,)

    def loss_target(self, targets: Tensor, *, encoding: str) -> Tensor:
        targets = targets.float()
        return 2 * targets - 1 if encoding == "plus_minus_one" else targets

    def metrics(self, num_outputs: int, *, stage: str) -> torchmetrics.MetricCollection:
        import torchmetrics
        from torchmetrics import classification

        return torchmetrics.MetricCollection(
            {
                "accuracy": classification.BinaryAccuracy(sync_on_compute=False),
                "f1_macro": classification.MulticlassF1Score(2, average="macro", sync_on_compute=False),
                "ece": classification.BinaryCalibrationError(n_bins=15, sync_on_compute=False),
            }
        )

    def update(self, metrics: torchmetrics.MetricCollection, outputs: Tensor, targets: Tensor) -> Tensor | None:
        probabilities = outputs.sigmoid()  # (N,)
        metrics["accuracy"].update(probabilities, targets)
        metrics["ece"].update(probabilities, targets)
        metrics["f1_macro"].update((probabilities > 0.5).long(), targets)
        return F.binary_cross_entropy_with_logits(outputs, targets.float())

    def figures(self, outputs: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, Figure]:
        from lossforge.evaluation import plots

        probability = outputs.sigmoid()
        predicted = (outputs > 0).long()
        confidence = torch.where(predicted == 1, probability, 1 - probability)
        return {
            "confusion_matrix.png": plots.confusion_matrix_figure(predicted, targets, class_names),
            "reliability.png": plots.reliability_figure(confidence, predicted == targets),
        }

    def check_num_outputs(self, num_outputs: int) -> str | None:
        if num_outputs == 1:
            return None
        return (
            f"a binary task has num_outputs=1 (one logit for the positive class), got {num_outputs}; "
            f"use task='multiclass' for a two-column output."
        )

    def num_class_names(self, num_outputs: int) -> int:
        return 2  # negative, positive

    def check_targets(self, targets: Tensor, num_outputs: int) -> str | None:
        fix = "store 0/1 class indices with targets.long() (losses that want ±1 convert them themselves)"
        return class_index_problem(targets, self.task, 2, fix)

    def example_inputs(
        self, *, batch: int, num_classes: int, dim: int, dtype: torch.dtype, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        prediction = torch.randn(batch, generator=generator, dtype=dtype)  # (N,) scores
        return prediction, shuffled_classes(batch, 2, generator).to(dtype)  # (N,) both classes present
