"""Hydra's handle on lossforge's parallel launcher (`hydra/launcher=parallel`); the work is in
`lossforge.sweeps.parallel`. Hydra imports this module whenever it scans for plugins, so it imports nothing heavy."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ParallelLauncher(Launcher):
    """A sweep's jobs in `n_jobs` worker processes forked from a server that has imported the training
    stack (`lossforge.sweeps.parallel`); `n_jobs` ≤ 0 counts back from the usable cores (-1 = all)."""

    def __init__(self, n_jobs: int = -1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from lossforge.sweeps.parallel import start_fork_server

        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context
        start_fork_server()  # usually started earlier, by the command line or the sweep callback: a no-op then

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from lossforge.sweeps.parallel import launch

        return launch(self, job_overrides, initial_job_idx)
