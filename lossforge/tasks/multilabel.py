"""Multilabel classification: K independent yes/no labels per sample, a sigmoid per label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lossforge.contract import Task
from lossforge.tasks.base import TaskSpec, float_target_problem

if TYPE_CHECKING:
    import torchmetrics


class MultilabelSpec(TaskSpec):
    """Prediction rule: label k is on when `sigmoid(logit_k)` > 0.5; metrics: subset accuracy, macro-F1."""

    task = Task.MULTILABEL
    baseline = "bce"  # one binary cross-entropy per label
    stratified = True

    def metrics(self, num_outputs: int, *, stage: str) -> torchmetrics.MetricCollection:
        import torchmetrics
        from torchmetrics import classification

        return torchmetrics.MetricCollection(
            {
                "subset_accuracy": classification.MultilabelExactMatch(num_outputs, sync_on_compute=False),
                "f1_macro": classification.MultilabelF1Score(num_outputs, average="macro", sync_on_compute=False),
            }
        )

    def update(self, metrics: torchmetrics.MetricCollection, outputs: Tensor, targets: Tensor) -> Tensor | None:
        metrics.update(outputs.sigmoid(), targets.long())
        return None

    def num_class_names(self, num_outputs: int) -> int:
        return num_outputs

    def check_targets(self, targets: Tensor, num_outputs: int) -> str | None:
        problem = float_target_problem(targets, self.task)
        if problem:
            return problem
        if targets.dim() != 2 or targets.shape[1] != num_outputs:
            return (
                f"multilabel targets must have shape (N, {num_outputs}) (one 0/1 column per label), "
                f"got {tuple(targets.shape)}."
            )
        not_binary = int(((targets != 0) & (targets != 1)).sum())
        return f"multilabel targets must be 0 or 1, got {not_binary} other value(s)." if not_binary else None

    def example_inputs(
        self, *, batch: int, num_classes: int, dim: int, dtype: torch.dtype, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        prediction = torch.randn(batch, num_classes, generator=generator, dtype=dtype)  # (N, K) logits
        return prediction, (torch.rand(batch, num_classes, generator=generator) < 0.5).to(dtype)  # (N, K)
