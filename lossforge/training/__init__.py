"""Training one experiment: the LightningModule, the optimizer, building from a config, and the run."""

import warnings

KNOWN_WARNINGS = (".*LeafSpec.*", "The `srun` command is available")
"""Warnings a lossforge run prints at every fit that its user can do nothing about, each with its reason:
torch deprecated `LeafSpec()`, which Lightning's `utilities/_pytree.py` still calls each fit; and
Lightning warns at every Trainer that `srun` is installed but did not start the process — on a SLURM login
node (or any machine with slurm-wlm) each local run and benchmark trial would print it, while lossforge
submits SLURM jobs itself (hydra/launcher=submitit_slurm), where the job's variables are set."""


class DiskFullError(OSError):
    """A run's file could not be written because its disk is full; the message says which file, which disk and
    what was kept. Here, not in `training.checkpoints`, so the command line can name it without importing torch."""


def ignore_known_warnings() -> None:
    """Filter `KNOWN_WARNINGS` in this process (rank 0 from the command line, other ranks as they start).
    This module imports nothing heavy, so the command line calls it before Lightning is imported."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
