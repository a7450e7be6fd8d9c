"""What a comparison runs: its entries (`loss` or `loss+miner`), its budget, its shared search space."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lossforge.evaluation.statistics.difference import RECOMMENDED_SEEDS


@dataclass(frozen=True)
class Budget:
    """How much every loss gets, alike: tuning trials, final seeds, and (optionally) epochs per run.

    Attributes:
        trials: Optuna trials per loss (pruned and failed trials count: the budget is the same).
        seeds: retraining runs of each loss's best configuration, each evaluated once on test.
        max_epochs: overrides `trainer.max_epochs` for every run; `None` keeps the config's.
    """

    trials: int
    seeds: int
    max_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.trials < 1 or self.seeds < 1:
            raise ValueError(f"Expected a budget of >= 1 trial and >= 1 seed, got {self.trials} and {self.seeds}")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"Expected `max_epochs` >= 1 or None, got {self.max_epochs}")


BUDGETS: dict[str, Budget] = {
    "tiny": Budget(trials=2, seeds=2, max_epochs=2),
    "small": Budget(trials=8, seeds=6),
    "default": Budget(trials=20, seeds=RECOMMENDED_SEEDS),
}
"""Named budgets. `tiny` is for tests (under a minute); `default` is the protocol as documented, with
enough seeds that a paired sign-flip test can reach p < 0.05 after Holm's correction over a handful of
comparisons (lossforge.evaluation.statistics.RECOMMENDED_SEEDS); `small` can only detect an effect
against one or two other losses (its verdicts say so when the seeds are too few)."""

SHARED_SPACE: dict[str, dict[str, float | bool]] = {
    "optimizer.lr": {"low": 1e-4, "high": 3e-2, "log": True},
    "optimizer.weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
}
"""The optimizer is tuned for every loss over the same ranges, so no loss wins by a better learning rate."""

_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True)
class Entry:
    """One contestant: a loss, optionally with a miner (metric losses).

    ```pycon
    >>> Entry.parse("triplet+semihard_triplets")
    Entry(loss='triplet', miner='semihard_triplets')
    >>> Entry.parse("focal").label
    'focal'

    ```
    """

    loss: str
    miner: str | None = None

    @classmethod
    def parse(cls, text: str) -> Entry:
        """`"loss"` or `"loss+miner"`; a malformed name fails, naming it."""
        loss, _, miner = text.strip().partition("+")
        for part in (loss, miner) if miner else (loss,):
            if not _NAME.match(part):
                raise ValueError(f"Expected a loss name or 'loss+miner', got {text!r}")
        return cls(loss, miner or None)

    @property
    def label(self) -> str:
        return f"{self.loss}+{self.miner}" if self.miner else self.loss

    def overrides(self) -> list[str]:
        """The Hydra overrides that select this entry."""
        return [f"loss={self.loss}", *([f"miner={self.miner}"] if self.miner else [])]
