"""A progress bar per entry while a comparison runs on a terminal: trials done / budget, pruned and failed
counts, the best validation score so far, seeds done, and the time left — read from the study storage, so it
shows every worker's progress, local or on SLURM. In a log (not a terminal) the workers print one line per
finished trial and seed run instead ([progress_line][lossforge.protocol.trials.progress_line])."""

from __future__ import annotations

import logging
import threading
from typing import Any

from lossforge.protocol.work import Plan, Progress, entry_progress

log = logging.getLogger("lossforge.protocol")


def postfix(entry: Progress) -> str:
    """What a bar shows beside its count.

    ```pycon
    >>> postfix(Progress("focal", 7, 20, pruned=2, failed=1, best=0.8123, seeds=0, seed_budget=10))
    '7/20 trials (2 pruned, 1 failed), best 0.8123, 0/10 seeds'

    ```
    """
    best = "-" if entry.best is None else f"{entry.best:.4g}"
    return (
        f"{entry.trials}/{entry.trial_budget} trials ({entry.pruned} pruned, {entry.failed} failed), best {best}, "
        f"{entry.seeds}/{entry.seed_budget} seeds"
    )


class ProgressBoard:
    """While open, one `tqdm` bar per entry (its total: trials plus seeds), refreshed every `interval_s` from
    the storage; tqdm's rate gives the time left."""

    def __init__(self, plan: Plan, *, interval_s: float = 2.0, file: Any = None) -> None:
        self.plan, self.interval_s, self.file = plan, interval_s, file
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="progress", daemon=True)
        self._bars: list[Any] = []

    def __enter__(self) -> ProgressBoard:
        from tqdm import tqdm

        total = self.plan.budget.trials + self.plan.budget.seeds
        self._bars = [
            tqdm(
                total=total, desc=job.label, position=number, leave=True, dynamic_ncols=True, unit="run", file=self.file
            )
            for number, job in enumerate(self.plan.jobs)
        ]
        self._update()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._update()
        for bar in self._bars:
            bar.close()

    def _refresh(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._update()
            except Exception as error:  # a busy storage: the next refresh reads it again
                log.debug("progress: %s", error)

    def _update(self) -> None:
        for bar, entry in zip(self._bars, entry_progress(self.plan), strict=True):
            bar.n = entry.trials + entry.seeds
            bar.set_postfix_str(postfix(entry), refresh=False)
            bar.refresh()
