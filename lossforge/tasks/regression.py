"""Regression: real-valued targets `(N,)` (one output) or `(N, D)`; metrics MAE and RMSE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lossforge.contract import Task
from lossforge.tasks.base import TaskSpec, float_target_problem

if TYPE_CHECKING:
    import torchmetrics
    from matplotlib.figure import Figure


class RegressionSpec(TaskSpec):
    """One output per target dimension; a single output is read as `(N,)`.

    ```pycon
    >>> RegressionSpec().read_outputs(torch.zeros(4, 1), 1).shape
    torch.Size([4])

    ```
    """

    task = Task.REGRESSION
    baseline = "l2"  # L2, the least-squares loss every robust loss claims to improve on
    selection_metric = "mae"  # robust to the outliers the regression claims are about
    higher_is_better = False

    def read_outputs(self, outputs: Tensor, num_outputs: int) -> Tensor:
        return outputs.squeeze(-1) if num_outputs == 1 else outputs  # (N,) or (N, D)

    def metrics(self, num_outputs: int, *, stage: str) -> torchmetrics.MetricCollection:
        import torchmetrics

        return torchmetrics.MetricCollection(
            {
                "mae": torchmetrics.MeanAbsoluteError(sync_on_compute=False),
                "rmse": torchmetrics.MeanSquaredError(squared=False, sync_on_compute=False),
            }
        )

    def update(self, metrics: torchmetrics.MetricCollection, outputs: Tensor, targets: Tensor) -> Tensor | None:
        metrics.update(outputs, targets.float())
        return None

    def figures(self, outputs: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, Figure]:
        from lossforge.evaluation import plots

        return {"predicted_vs_true.png": plots.scatter_figure(outputs, targets)}

    def check_targets(self, targets: Tensor, num_outputs: int) -> str | None:
        problem = float_target_problem(targets, self.task)
        if problem:
            return problem
        expected = "(N,) or (N, 1)" if num_outputs == 1 else f"(N, {num_outputs})"
        dims = 1 if targets.dim() == 1 else (targets.shape[1] if targets.dim() == 2 else -1)
        if dims != num_outputs:
            return (
                f"regression targets must have shape {expected} for num_outputs={num_outputs}, "
                f"got {tuple(targets.shape)}."
            )
        return None

    def example_inputs(
        self, *, batch: int, num_classes: int, dim: int, dtype: torch.dtype, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        prediction = torch.randn(batch, dim, generator=generator, dtype=dtype)  # (N, D)
        return prediction, torch.randn(batch, dim, generator=generator, dtype=dtype)  # (N, D)
