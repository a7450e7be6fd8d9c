"""Orchestration of many runs: a Hydra multirun as one parent MLflow run (its life, failed jobs, resume,
fail-fast, the end-of-sweep comparison) and lossforge's parallel launcher with its fork server.

- `multirun`: the sweep callback ([MlflowSweepCallback][lossforge.sweeps.multirun.MlflowSweepCallback], named in
  `conf/config.yaml`): the parent run's life and the comparison at the sweep's end.
- `jobs`: each job's run under it ([run_sweep_job][lossforge.sweeps.jobs.run_sweep_job]): a failing or cancelled
  job recorded, resume, fail-fast.
- `summary`: what the sweep prints at its end (the summary, the failed jobs, the hint to compare).
- `parallel`: `hydra/launcher=parallel` — the fork server and its workers; `parallel_preload` is what
  the fork server imports once.

Importing this package imports neither torch nor Lightning: the sweep callback runs in the launcher process.
"""

from lossforge.sweeps.jobs import SweepFailed, SweepOptions, run_sweep_job
from lossforge.sweeps.multirun import MlflowSweepCallback

__all__ = ["MlflowSweepCallback", "SweepFailed", "SweepOptions", "run_sweep_job"]
