"""Metric learning: an embedding trained from class labels, evaluated by retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lossforge.contract import Task
from lossforge.tasks.base import TaskSpec, shuffled_classes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class MetricSpec(TaskSpec):
    """The model's outputs are embeddings `(N, D)`; val/test compute Recall@1/5, MAP@R and kNN accuracy
    over the whole split (leave-one-out), ranked by cosine distance when the loss's `distance` is
    `"cosine"`. Not a dataset task: a metric loss trains on a class-labelled dataset."""

    task = Task.METRIC
    baseline = "contrastive+semihard_triplets"  # contrastive loss on the pairs of semi-hard triplets
    selection_metric = "map_at_r"  # rank-aware, as "A Metric Learning Reality Check" recommends
    embedding = True

    def evaluate_embeddings(self, embeddings: Tensor, labels: Tensor, *, cosine: bool) -> dict[str, float]:
        """Retrieval metrics of a whole split's embeddings."""
        from lossforge.evaluation.retrieval import retrieval_metrics

        return retrieval_metrics(embeddings, labels, cosine=cosine)

    def figures(self, outputs: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, Figure]:
        from lossforge.evaluation import plots

        return {"embeddings.png": plots.embedding_figure(outputs, targets, class_names)}

    def check_targets(self, targets: Tensor, num_outputs: int) -> str | None:
        return "metric is not a dataset task: a metric loss trains on a binary or multiclass dataset."

    def example_inputs(
        self, *, batch: int, num_classes: int, dim: int, dtype: torch.dtype, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        embeddings = torch.randn(batch, dim, generator=generator, dtype=dtype)  # (N, D)
        # At most batch // 2 classes, so each has at least two members.
        return embeddings, shuffled_classes(batch, min(num_classes, batch // 2), generator)
