"""The lecture's worked examples, recomputed through lossforge."""

from __future__ import annotations

import math

import pytest
import torch

from lossforge import build_loss


def _cross_entropy_sum(probabilities: list[list[float]], labels: list[int]) -> float:
    # log-probabilities are valid logits: softmax(log q) = q when each row of q sums to 1
    logits = torch.tensor(probabilities, dtype=torch.float64).log()
    return build_loss("cross_entropy", reduction="sum")(logits, torch.tensor(labels)).item()


def test_worked_example_accuracy_and_cross_entropy() -> None:
    # Ground truth is class 0 each time; its confidences are 0.1, 0.4 and 0.4.
    probabilities = [[0.1, 0.6, 0.3], [0.4, 0.3, 0.3], [0.4, 0.35, 0.25]]
    labels = [0, 0, 0]
    predicted = torch.tensor(probabilities).argmax(dim=1)
    assert (predicted == torch.tensor(labels)).double().mean().item() == pytest.approx(2 / 3)
    assert round(_cross_entropy_sum(probabilities, labels), 2) == 4.14  # −ln 0.1 − 2 ln 0.4


def test_assignment_cross_entropy_and_the_slides_1_63() -> None:
    # Ground-truth confidences 0.3, 0.7, 0.7 (the other probabilities do not enter the loss).
    probabilities = [[0.3, 0.5, 0.2], [0.7, 0.2, 0.1], [0.7, 0.1, 0.2]]
    total = _cross_entropy_sum(probabilities, [0, 0, 0])
    assert round(total, 2) == 1.92  # −ln 0.3 − 2 ln 0.7 = 1.9173
    # The slide's 1.63 is wrong. No logarithm base explains it: log2 gives 2.77, log10 0.83, and base
    # e^(1.9173 / 1.63) ≈ 3.24 is no base anyone uses. It is what natural logs give when the first
    # confidence is read as 0.4 (the worked example's value) instead of 0.3: −ln 0.4 − 2 ln 0.7 = 1.6296.
    assert round(total / math.log(2), 2) == 2.77 and round(total / math.log(10), 2) == 0.83
    assert round(-math.log(0.4) - 2 * math.log(0.7), 2) == 1.63


def test_l1_is_robust_to_an_outlier_l2_is_not_huber_sits_between() -> None:
    # Fit one constant c to targets with an outlier by minimising each loss over a grid of candidates:
    # each candidate is a row of the prediction, so "none" gives its total loss over the five targets.
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0], dtype=torch.float64)
    candidates = torch.arange(0.0, 100.0, 0.01, dtype=torch.float64)
    prediction = candidates[:, None].expand(-1, len(targets))  # (M, 5)
    target = targets.expand(len(candidates), -1)  # (M, 5)

    def best_constant(name: str, **params: float) -> float:
        totals = build_loss(name, reduction="none", **params)(prediction, target)  # (M,)
        return candidates[totals.argmin()].item()

    median, mean = targets.median().item(), targets.mean().item()  # 3 and 22
    assert best_constant("l1") == pytest.approx(median, abs=0.01)
    assert best_constant("l2") == pytest.approx(mean, abs=0.01)
    # Huber with δ = 10: the four inliers stay quadratic, the outlier pulls with a constant force δ,
    # so Σ(y_i − c) over the inliers + δ = 0 → c = (10 + 10) / 4 = 5.
    huber = best_constant("huber", delta=10.0)
    assert huber == pytest.approx(5.0, abs=0.01)
    assert median < huber < mean
