"""The contract kit: every promise of [lossforge.contract][], as named checks a plugin author can run.

Each check is a plain function that raises `AssertionError` with a message naming the component, the
task, reduction and dtype where it matters, and the promise it broke; nothing here needs pytest. The kit
checks exactly the [LossPlugin][lossforge.contract.LossPlugin] / [MinerPlugin][lossforge.contract.MinerPlugin]
Protocols, through the same adapter and the same call path the training module uses
([lossforge.training.module.LossTask.loss_value][]), so a component that passes the kit trains.

The kit is a package with one module per component kind — [losses][lossforge.testing.losses],
[miners][lossforge.testing.miners], and what they share in [common][lossforge.testing.common] — and everything a
plugin author uses is importable from here.

A plugin's whole contract test, one pytest id per check (`test_contract[my_loss-check_reductions]`):

    from lossforge.testing import parametrize_checks

    @parametrize_checks(distribution="my-plugin")
    def test_contract(check):
        check()

or, for one component, `check_loss("my_loss")` / `check_miner("my_miner")` (stops at the first
failure), or from the shell `lossforge check my-plugin` (a verdict per component).

Loss checks ([LOSS_CHECKS][lossforge.testing.losses.LOSS_CHECKS]), for every task the loss declares and every dtype and
reduction:

* `check_declarations` — `tasks` and the optional attributes hold values the contract allows;
* `check_constructor` — keyword-only parameters, each with a default and a type annotation, including
  `reduction`; the loss builds with nothing but `reduction` given;
* `check_outputs` — finite, in the prediction's dtype; `"none"` is per sample `(N,)` (any 1-D shape
  for metric losses: per pair or triplet), `"mean"`/`"sum"` are scalars; attached to the graph, with
  finite gradients;
* `check_reductions` — `"sum"` equals `"none".sum()`; `"mean"` equals `"none".mean()`, or for
  `mean_is_weighted = True` (`"none"` is $w_i \\ell_i$, `"mean"` is $\\sum_i w_i \\ell_i / \\sum_i w_i$
  ) a weighted mean: unchanged when the batch is repeated, with the sign of the sum;
* `check_bad_targets` — a target whose batch size differs from the prediction's raises a
  `ValueError` (supervised tasks);
* `check_degenerate_batches` — metric losses: a one-sample batch gives 0 that backpropagates; all labels
  unique gives a finite loss, 0 for `tuple_kind = "triplet"`;
* `check_trains` — called the way lossforge trains (`prepare` hook, target encoding, told its targets
  were validated), one optimizer step moves a model's parameters and the value is the one of a loss that
  scans its targets; a loss that counts tuples reports `0 <= active <= tuples`;
* `check_learnable` — a loss with parameters of its own once prepared (class proxies): the same seed
  makes the same parameters, each gets a finite non-zero gradient, a `state_dict` round trip into a
  fresh instance restores them, and trained as lossforge trains them (their own optimizer group) the loss
  falls on the toy problem and they move; nothing to check for a loss without parameters;
* `check_search_space` — the declared `search_space` is valid (read by
  [lossforge.contract.search_space][]), every default lies inside its prior (a `None` default is
  allowed), and values drawn from it — each bound, the midpoint, every choice, one parameter at a time,
  then all at their low and all at their high ends — build a loss with finite outputs and gradients.

Miner checks ([MINER_CHECKS][lossforge.testing.miners.MINER_CHECKS]): `check_declarations`, `check_constructor`,
`check_tuples` (int64 1-D index tensors, not requiring grad, in range; positives share the anchor's label at another
index, negatives do not), `check_unique_labels` (no positive pair, still valid tuples),
`check_feeds_a_loss` (a lossforge loss of its tuple kind trains on its tuples) and
`check_search_space` (as for losses; values drawn from the space build a miner with valid tuples).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lossforge.testing.common import (
    REDUCTIONS,
    Check,
    Subject,
    check_constructor,
    check_declarations,
    check_search_space,
    make_inputs,
)
from lossforge.testing.datasets import (
    DATASET_CHECKS,
    check_dataset,
    check_dataset_classes,
    check_dataset_declaration,
    check_dataset_reproducible,
    check_dataset_splits,
    dataset_checks,
    dataset_names,
)
from lossforge.testing.losses import (
    LOSS_CHECKS,
    LossSubject,
    check_bad_targets,
    check_degenerate_batches,
    check_learnable,
    check_loss,
    check_outputs,
    check_reductions,
    check_trains,
    loss_checks,
    loss_names,
)
from lossforge.testing.miners import (
    MINER_CHECKS,
    MinerSubject,
    check_feeds_a_loss,
    check_miner,
    check_tuples,
    check_unique_labels,
    miner_checks,
    miner_names,
)
from lossforge.testing.models import (
    MODEL_CHECKS,
    check_model,
    check_model_constructor,
    check_model_shapes,
    check_model_trains,
    model_checks,
    model_names,
)

__all__ = [
    "DATASET_CHECKS",
    "LOSS_CHECKS",
    "MINER_CHECKS",
    "MODEL_CHECKS",
    "REDUCTIONS",
    "Check",
    "LossSubject",
    "MinerSubject",
    "Subject",
    "check_bad_targets",
    "check_constructor",
    "check_dataset",
    "check_dataset_classes",
    "check_dataset_declaration",
    "check_dataset_reproducible",
    "check_dataset_splits",
    "check_declarations",
    "check_degenerate_batches",
    "check_feeds_a_loss",
    "check_learnable",
    "check_loss",
    "check_miner",
    "check_model",
    "check_model_constructor",
    "check_model_shapes",
    "check_model_trains",
    "check_outputs",
    "check_reductions",
    "check_search_space",
    "check_trains",
    "check_tuples",
    "check_unique_labels",
    "component_checks",
    "dataset_checks",
    "dataset_names",
    "loss_checks",
    "loss_names",
    "make_inputs",
    "miner_checks",
    "miner_names",
    "model_checks",
    "model_names",
    "parametrize_checks",
]


def component_checks(*, distribution: str | None = None) -> list[Check]:
    """The checks of every registered loss and miner (of one `distribution`, if given)."""
    losses = [check for name in loss_names(distribution=distribution) for check in loss_checks(name)]
    return losses + [check for name in miner_names(distribution=distribution) for check in miner_checks(name)]


def parametrize_checks(
    checks: Iterable[Check] | None = None, *, distribution: str | None = None
) -> Callable[[Callable[..., Any]], Any]:
    """`pytest.mark.parametrize("check", …)` over `checks` (default:
    [component_checks][lossforge.testing.component_checks] of `distribution`), one test id per component and check."""
    import pytest  # only the pytest helper needs pytest

    selected = list(checks) if checks is not None else component_checks(distribution=distribution)
    return pytest.mark.parametrize("check", selected, ids=[check.id for check in selected])
