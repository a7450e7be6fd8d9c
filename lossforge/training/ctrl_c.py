"""Ctrl-C during a run takes effect at a safe point, never in the middle of a write to the run's store.

Python raises `KeyboardInterrupt` wherever the main thread happens to be. During a run that is often inside
an MLflow write (each epoch's metrics, the figures, the run's end). With a SQLite store the interrupted
write's transaction can keep the database's write lock: the run's own "KILLED" record then waits for that
lock and fails ("database is locked"), so the run stays RUNNING, and so do the runs of other processes
that share the store (a parallel sweep's workers, all interrupted by one Ctrl-C in the terminal).

[CtrlCAtSafePoints][lossforge.training.ctrl_c.CtrlCAtSafePoints] notes the first Ctrl-C and raises it at the
next safe point instead: the start of a training, validation or test batch (a Lightning callback), or where
the run calls [check][lossforge.training.ctrl_c.CtrlCAtSafePoints.check] between its phases. It ends the run
as an immediate Ctrl-C would (Lightning saves `interrupted.ckpt`, the run is marked KILLED), one batch
later. A second Ctrl-C is not deferred: it interrupts at once. SIGTERM needs none of this: Lightning already
raises it at the next batch.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

import lightning as L


class CtrlCAtSafePoints(L.Callback):
    """While entered (`with`), the first SIGINT only sets `pending`; the next safe point raises
    `KeyboardInterrupt`. Leaving the block restores the previous handler, and raises `KeyboardInterrupt` if one
    is still pending and nothing else is being raised.

    Outside the main thread, or where SIGINT is not Python's default handler (ignored in a background job,
    or a handler of the caller's own), it changes nothing.

    ```pycon
    >>> import os, signal
    >>> before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    >>> raised = False
    >>> with CtrlCAtSafePoints() as ctrl_c:
    ...     os.kill(os.getpid(), signal.SIGINT)  # noted, not raised: a write here would finish
    ...     pending = ctrl_c.pending
    ...     try:
    ...         ctrl_c.check()
    ...     except KeyboardInterrupt:
    ...         raised = True
    >>> pending, raised, signal.getsignal(signal.SIGINT) is signal.default_int_handler
    (True, True, True)
    >>> _ = signal.signal(signal.SIGINT, before)

    ```
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> CtrlCAtSafePoints:
        self.pending = False
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self.pending and kind is None:
            self.pending = False
            raise KeyboardInterrupt

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.pending:  # a second Ctrl-C: the user insists
            raise KeyboardInterrupt
        self.pending = True

    def check(self) -> None:
        """A safe point: raise `KeyboardInterrupt` if a Ctrl-C is pending."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.check()

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.check()

    def on_test_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.check()
