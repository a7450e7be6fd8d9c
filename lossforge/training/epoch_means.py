"""Training metrics summed on the device during an epoch and logged once, as sample-weighted means.

A Lightning `self.log` per step costs Python time every step (`benchmarks/README.md`, step costs); a
running sum costs one in-place add and no host sync. The means are logged at the epoch's last batch —
before validation and the end-of-epoch callbacks read them.
"""

from __future__ import annotations

import lightning as L
from torch import Tensor


class EpochMeans:
    """Running `(Σ weight·value, Σ weight)` per metric name, for one epoch.

    ```pycon
    >>> import torch
    >>> means = EpochMeans()
    >>> means.add("train/loss", torch.tensor(1.0), 3)
    >>> means.add("train/loss", torch.tensor(2.0), 1)
    >>> {name: float(total / count) for name, (total, count) in means.pop().items()}
    {'train/loss': 1.25}

    ```
    """

    def __init__(self) -> None:
        self._sums: dict[str, tuple[Tensor, int]] = {}

    def add(self, name: str, value: Tensor, weight: int) -> None:
        """Add `value` (a 0-d tensor, detached here) with `weight` samples."""
        weighted = value.detach().float() * weight
        if name in self._sums:
            total, count = self._sums[name]
            self._sums[name] = (total.add_(weighted), count + weight)
        else:
            self._sums[name] = (weighted, weight)

    def pop(self) -> dict[str, tuple[Tensor, int]]:
        """The sums so far, `{name: (Σ weight·value, Σ weight)}`; starts a new epoch."""
        sums, self._sums = self._sums, {}
        return sums

    def clear(self) -> None:
        self._sums = {}


def epoch_ends(trainer: L.Trainer, batch_index: int) -> bool:
    """Whether the training batch that just ended is the epoch's last one (or training stops after it)."""
    return bool(
        trainer.is_last_batch
        or batch_index + 1 >= trainer.num_training_batches
        or 0 <= trainer.max_steps <= trainer.global_step
        or trainer.should_stop
    )
