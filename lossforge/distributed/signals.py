"""Stopping together: a SIGTERM to any one process ends every process of a DDP run at the same step."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

log = logging.getLogger("lossforge")


class StopTogetherOnSigterm(L.Callback):
    """DDP: a SIGTERM stops every process at the same training step, or after the test pass.

    The handler only notes the signal. At the start of each training step rank 0's note is broadcast
    and, if set, given to Lightning on every process, so all of them raise `SIGTERMException` at the
    next step together, save `interrupted.ckpt` together, and rank 0 marks the run KILLED. A SIGTERM
    during the test pass (or after the last training step) ends the run after it: `fit_and_test` then
    raises `SIGTERMException` on its own.

    Why: Lightning 2.6's SIGTERM handler broadcasts from *inside* the handler — a collective at whatever
    point the signal interrupted rank 0, which the others are not making then — and rank 0 also checks
    its flag alone at epoch end and during validation. Measured here, `kill <rank 0>` of a
    `trainer=ddp_cpu` run left both processes waiting for each other forever (Lightning-AI/
    pytorch-lightning#20806: SIGTERM not handled consistently across ranks). Lightning restores its own
    handler after `fit`/`test`; with one process this callback does nothing.
    """

    def __init__(self) -> None:
        self.received = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._replace_handler(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._replace_handler(trainer)

    def _replace_handler(self, trainer: L.Trainer) -> None:
        if trainer.world_size < 2:
            return

        def note(signum: int, frame: FrameType | None) -> None:
            log.info("ddp      SIGTERM on rank %d: the processes stop together", trainer.global_rank)
            self.received = True

        signal.signal(signal.SIGTERM, note)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, index: int) -> None:
        if trainer.world_size < 2:
            return
        flag = torch.tensor([int(self.received)], device=pl_module.device)
        dist.broadcast(flag, src=0)  # every process is here, at the same step
        if flag.item():
            trainer._signal_connector.received_sigterm = True  # Lightning stops all at the next step
