"""What the parallel launcher's fork server does once, so that no worker does it again in its first job
(`lossforge.sweeps.parallel.PRELOAD`; imported there only).

A job imports much of what it needs lazily — MLflow's SQL store (SQLAlchemy, Alembic), scikit-learn's data
sets, the task function's module — and its first config composition scans Hydra's plugins and lossforge's
registry. Measured in the first job of a worker that had imported only the training stack: 0.9 s of such
imports before its first log line. Each step is best effort: one that fails here is simply done (and its
error reported) by the job.
"""

from __future__ import annotations

import contextlib
import importlib

_MODULES = (
    "lossforge.training.run",  # torch, Lightning, MLflow, lossforge's training code
    "lossforge.evaluation.plots",  # matplotlib, for a run's figures
    "lossforge.commands.app",  # the module of Hydra's task function
    "mlflow.store.tracking.sqlalchemy_store",  # the SQLite/PostgreSQL store: SQLAlchemy, Alembic
    "sklearn.datasets",  # the default data set (the digits)
)

for _module in _MODULES:
    with contextlib.suppress(Exception):
        importlib.import_module(_module)

with contextlib.suppress(Exception):
    from hydra.core.plugins import Plugins

    Plugins.instance()  # scans the hydra_plugins namespace (every launcher and sweeper installed)

with contextlib.suppress(Exception):
    from lossforge.registry import LOSSES, MINERS

    LOSSES.names(), MINERS.names()  # entry points and providers: lossforge's and the plugins'
