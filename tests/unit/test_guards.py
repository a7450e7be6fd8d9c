"""lossforge.training.guards: the explosion guard judges growth over the first step's loss, never size, and a
loss of the wrong shape is named with its package."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lossforge.registry import LOSSES
from lossforge.training.guards import ExplodingLossGuard, LossExplodedError, LossShapeError, check_reduced_loss


def run_epochs(guard: ExplodingLossGuard, epochs: list[list[float]]) -> int:
    """Feed ``guard`` each epoch's step losses; return how many epochs ended without it stopping the run."""
    trainer = SimpleNamespace(current_epoch=0)
    for epoch, losses in enumerate(epochs):
        trainer.current_epoch = epoch
        guard.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
        for loss in losses:
            guard.on_before_backward(trainer, None, torch.tensor(loss))  # type: ignore[arg-type]
        guard.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    return len(epochs)


def guard() -> ExplodingLossGuard:
    return ExplodingLossGuard(loss_name="cross_entropy", learning_rate=1e30)


def test_a_loss_that_explodes_for_two_epochs_stops_the_run() -> None:
    with pytest.raises(LossExplodedError, match=r"cross_entropy loss diverged.*optimizer.lr=1e\+30"):
        run_epochs(guard(), [[2.3, 5e31, 4e31], [3e31, 3e31]])
    assert LossExplodedError.outcome == "diverged"


def test_one_bad_epoch_is_forgiven_and_a_large_scale_is_no_explosion() -> None:
    assert run_epochs(guard(), [[2.3, 5e3, 4e3], [1.0, 0.9], [5e3, 4e3], [0.8]]) == 4  # never two in a row
    regression = [[4e10, 3e10], [1e10, 9e9], [5e9, 5e9]]  # unscaled targets: huge, and falling
    assert run_epochs(guard(), regression) == 3


def test_a_non_finite_epoch_mean_stops_the_run_at_once() -> None:
    with pytest.raises(LossExplodedError, match="became inf"):
        run_epochs(guard(), [[2.3, float("inf")]])


def test_the_reference_survives_a_resume() -> None:
    first = guard()
    run_epochs(first, [[2.3, 5e31]])  # one exploding epoch
    resumed = guard()
    resumed.load_state_dict(first.state_dict())
    with pytest.raises(LossExplodedError):
        run_epochs(resumed, [[4e31]])  # the second in a row, in a new process


def test_a_loss_of_the_wrong_shape_is_named_with_its_package() -> None:
    loss = LOSSES.build("l1")
    check_reduced_loss(torch.tensor(0.5), loss=loss)
    with pytest.raises(LossShapeError, match=r"loss 'l1' \(package lossforge==.*\) returned a tensor of shape \(8,\)"):
        check_reduced_loss(torch.ones(8), loss=loss)
