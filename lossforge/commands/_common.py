"""What the commands share: which errors are the user's (one paragraph, no traceback) and how Lightning is
kept quiet."""

from __future__ import annotations

import logging
import sys

from lossforge.contract import Switches
from lossforge.training import DiskFullError

USER_ERRORS = (LookupError, ValueError, TypeError, ConnectionError, FloatingPointError, DiskFullError)
"""Errors that mean "the input is wrong", not "lossforge is broken": one paragraph, no traceback wall (a full
disk too: its message says which disk and what to do)."""


def user_error(error: BaseException) -> int:
    """Print `error` as one paragraph and return exit status 1; re-raise it with `LOSSFORGE_TRACEBACK=1`."""
    if Switches.read().traceback:
        raise error
    print(f"lossforge: error: {error}\n(LOSSFORGE_TRACEBACK=1 shows the traceback)", file=sys.stderr, flush=True)
    return 1


def quiet_lightning() -> None:
    """Keep Lightning's warnings and drop its info lines ("GPU available: …", "💡 Tip: …", "`Trainer.fit`
    stopped: …"): lossforge logs what a run does, and `training.progress` shows the epochs. Lightning
    logs through its own handler and Hydra's root handler (every line twice); keep one copy."""
    from lossforge.training import ignore_known_warnings

    for name in ("lightning.pytorch", "lightning.fabric"):  # fabric: DDP's "Initializing distributed"
        lightning_log = logging.getLogger(name)
        lightning_log.setLevel(logging.WARNING)
        lightning_log.propagate = False
    ignore_known_warnings()  # LeafSpec, "srun is available": see lossforge.training.KNOWN_WARNINGS
