"""The command line.

* ``python -m lossforge [overrides]`` — the Hydra app: one experiment, or a sweep with ``-m``.
* ``lossforge [overrides]`` — the same app, as a console script.
* ``lossforge list`` — every loss and miner: task, parameters and defaults, the package that provides it,
  and plugins that failed to load.
* ``lossforge compare`` — a sweep's runs read back from MLflow as a table and a plot (``--help``).

Heavy imports (torch, Lightning, MLflow) happen only once an experiment actually runs, so help and
listing stay fast.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--info"}
log = logging.getLogger("lossforge")


@hydra.main(config_path="pkg://lossforge.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from lossforge.train import train

    _quiet_lightning()
    hydra_config = HydraConfig.get()
    _share_cores(hydra_config.launcher.get("n_jobs"))
    output_dir = Path(hydra_config.runtime.output_dir)
    metrics = train(cfg, base_dir=Path(hydra.utils.get_original_cwd()), output_dir=output_dir)
    target = cfg.get("optimized_metric")
    return metrics.get(target) if target else None


def _quiet_lightning() -> None:
    """Lightning logs through its own handler and Hydra's root handler (every line twice), and adds a
    sales tip; keep one copy of what matters."""
    import warnings

    lightning_log = logging.getLogger("lightning.pytorch")
    lightning_log.propagate = False
    lightning_log.addFilter(lambda record: "Tip:" not in record.getMessage())
    for handler in lightning_log.handlers:
        handler.addFilter(lambda record: "Tip:" not in record.getMessage())
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _share_cores(parallel_jobs: int | None) -> None:
    """Under a parallel launcher each job gets its share of the cores: oversubscribed threads are slower."""
    if parallel_jobs and parallel_jobs > 1:
        import os

        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // parallel_jobs))


def run_app() -> None:
    """Register every loss/miner as a Hydra option, then hand the command line to Hydra."""
    from lossforge.config import register_components

    register_components(with_parameters=not _HELP_FLAGS.intersection(sys.argv[1:]))
    _app()


def list_components() -> int:
    """Print every registered loss and miner; return the exit status (1 if a plugin failed to load)."""
    from lossforge.registry import LOSSES, MINERS

    failed = 0
    for title, registry in (("Losses", LOSSES), ("Miners", MINERS)):
        print(f"{title}:")
        for name in registry.names():
            info = registry.info(name)
            try:
                component = registry.load(name)
                parameters = registry.parameters(name)
            except Exception as error:
                failed += 1
                print(f"  {name:<24} FAILED  {info.provider}\n      {error}")
                continue
            kind = getattr(component, "tasks", None) or (getattr(component, "tuple_kind", "") + "s",)
            print(f"  {name:<24} {'/'.join(kind):<22} {info.provider}")
            if parameters:
                print("      " + ", ".join(f"{p.name}={p.default!r}" for p in parameters.values()))
        for name, providers in registry.conflicts().items():
            print(f"  {name!r} is registered by several packages: {', '.join(providers)}")
        print()
    return 1 if failed else 0


def main() -> None:
    """Console script entry: ``lossforge list`` or the Hydra app."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["list"]:
        sys.exit(list_components())
    if arguments[:1] == ["compare"]:
        from lossforge.compare import main as compare

        sys.exit(compare(arguments[1:]))
    run_app()
