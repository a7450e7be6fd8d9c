"""lossforge: compare loss functions honestly.

The public API. Importing it imports neither torch nor Lightning (names are listed from package metadata):

* [train][lossforge.api.train] one experiment, [benchmark][lossforge.api.benchmark] losses fairly,
  [compare][lossforge.api.compare] a sweep's runs — each returns an object ([lossforge.api][]; loaded when first used);
* list, build and trace the registered losses and miners ([lossforge.components][]).

```pycon
>>> from lossforge import list_losses
>>> {"hinge", "multiclass_hinge"} <= set(list_losses("*hinge"))
True

```

The package is built in layers, each importing only from those below it (`docs/architecture.md`; checked by
`lint-imports` against the contracts in `pyproject.toml`), top to bottom:

1. the command line: `cli` (the dispatcher), `commands/` (one module per command), `__main__`;
2. this public API (`api`) and Hydra's launcher plugins (`hydra_plugins.lossforge_parallel`, …);
3. orchestration: `sweeps/` (a multirun's parent run, failures, resume, the parallel launcher),
   `protocol/` (`lossforge benchmark`), `testing/` (the contract kit);
4. `training/` (one run: build, fit, test, record) and `evaluation.compare` (the report of many runs);
   under them the checks before a run or a sweep (`config_checks`, `preflight`);
5. `tracking/` (MLflow I/O only) and `evaluation.loss_figures`;
6. the configuration: `hydra_options`, `overrides` (checks of a command line), `catalog`;
   under it Hydra's search-path plugin (`hydra_plugins.lossforge_searchpath`);
7. the components: `data/`, `models/`, `losses/`, `distributed/`; then `mining/` below the losses;
8. `tasks/` (one `TaskSpec` per task);
9. evaluation's pure parts: `evaluation.statistics`, `evaluation.retrieval`, `evaluation.plots`;
10. `components` (what is registered, by name), `registry` (entry points), `contract` (the Protocols
    every plugin meets) at the bottom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lossforge._version import __version__
from lossforge.components import build_loss, build_miner, list_losses, list_miners, loss_info, miner_info
from lossforge.registry import RegistryError

if TYPE_CHECKING:
    from lossforge.api import TrainResult, benchmark, compare, train

__all__ = [
    "RegistryError",
    "TrainResult",
    "__version__",
    "benchmark",
    "build_loss",
    "build_miner",
    "compare",
    "list_losses",
    "list_miners",
    "loss_info",
    "miner_info",
    "train",
]

_API = ("TrainResult", "benchmark", "compare", "train")


def __getattr__(name: str) -> Any:
    """`lossforge.train` & co., imported on first use: `import lossforge` stays light."""
    if name in _API:
        from lossforge import api

        return getattr(api, name)
    raise AttributeError(f"module 'lossforge' has no attribute {name!r}")
