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
import os
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--info"}
#: Errors that mean "the input is wrong", not "lossforge is broken": one paragraph, no traceback wall.
_USER_ERRORS = (LookupError, ValueError, TypeError, ConnectionError, FloatingPointError)
#: Config groups whose options a command line names; checked before Hydra so a typo gets a suggestion.
_YAML_GROUPS = ("model", "dataset", "optimizer", "trainer", "logger", "experiment", "hparams_search")
log = logging.getLogger("lossforge")


@hydra.main(config_path="pkg://lossforge.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from lossforge.training.run import train

    _quiet_lightning()
    hydra_config = HydraConfig.get()
    _share_cores(hydra_config.launcher.get("n_jobs"))
    output_dir = Path(hydra_config.runtime.output_dir)
    try:
        metrics = train(cfg, base_dir=Path(hydra.utils.get_original_cwd()), output_dir=output_dir)
    except _USER_ERRORS as error:
        if os.environ.get("LOSSFORGE_TRACEBACK"):
            raise
        print(f"lossforge: error: {error}\n(LOSSFORGE_TRACEBACK=1 shows the traceback)", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except SystemExit as stop:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(stop, SIGTERMException):  # Lightning exits with status 0 here; a killed run is no success
            print("lossforge: stopped by SIGTERM; the run is marked KILLED", file=sys.stderr, flush=True)
            raise SystemExit(128 + signal.SIGTERM) from None
        raise
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
    logging.getLogger("lightning.fabric").propagate = False  # as lightning.pytorch: DDP's "Initializing distributed"


def _share_cores(parallel_jobs: int | None) -> None:
    """Under a parallel launcher each job gets its share of the cores: oversubscribed threads are slower."""
    if parallel_jobs and parallel_jobs > 1:
        import os

        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // parallel_jobs))


def group_options(group: str) -> list[str]:
    """The options of a config group: registry names for ``loss``/``miner``, YAML files for the rest, and
    the YAML files plugins ship for it (their ``lossforge.configs`` folders)."""
    from hydra_plugins.lossforge_searchpath.lossforge_searchpath import plugin_config_options

    if group in ("loss", "miner"):
        from lossforge.registry import LOSSES, MINERS

        return sorted({*(LOSSES if group == "loss" else MINERS).names(), *plugin_config_options(group)})
    from importlib import resources

    folder = resources.files("lossforge.conf") / group
    own = {entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml")}
    return sorted(own | set(plugin_config_options(group)))


def check_overrides(arguments: list[str]) -> str | None:
    """A teaching error for the first override naming an unknown option, or one that smuggles in a
    ``_target_`` (configs build registered components only, unless ``LOSSFORGE_ALLOW_TARGETS=1``)."""
    import difflib

    for argument in arguments:
        key, equals, value = argument.partition("=")
        if "_target_" in key and not os.environ.get("LOSSFORGE_ALLOW_TARGETS"):
            return (
                f"refusing override {argument!r}: lossforge builds only registered components and will not import "
                f"an arbitrary `_target_` from the command line. Register a plugin instead, or set "
                f"LOSSFORGE_ALLOW_TARGETS=1 if you trust this target."
            )
        group = key.lstrip("+~")
        if not equals or group not in ("loss", "miner", *_YAML_GROUPS) or "(" in value:
            continue
        options = group_options(group)
        for option in value.split(","):
            if option in ("null", "") or option in options:
                continue
            close = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            where = " `lossforge list` shows them, with their packages." if group in ("loss", "miner") else ""
            return f"unknown {group} {option!r}.{hint} Available: {', '.join(options)}.{where}"
    return None


def run_app() -> None:
    """Register every loss/miner as a Hydra option, then hand the command line to Hydra."""
    from lossforge.hydra_options import register_components

    problem = check_overrides(sys.argv[1:])
    if problem:
        print(f"lossforge: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    register_components(with_parameters=not _HELP_FLAGS.intersection(sys.argv[1:]))
    _app()


def list_components(arguments: list[str] | None = None) -> int:
    """``lossforge list [--task TASK] [--names]``: every registered loss and miner, or only the losses that
    serve ``TASK``; ``--names`` prints them comma-separated, ready for a sweep. Exit status 1 if a plugin
    failed to load."""
    import argparse

    from lossforge.losses.base import TASKS
    from lossforge.registry import LOSSES, MINERS

    parser = argparse.ArgumentParser(prog="lossforge list", description="List the registered losses and miners.")
    parser.add_argument("--task", choices=TASKS, help="only the losses that can train this task")
    parser.add_argument("--names", action="store_true", help="print just the names, comma-separated")
    options = parser.parse_args(arguments or [])
    if options.task or options.names:
        names = [n for n in LOSSES.names() if options.task is None or _serves(LOSSES, n, options.task)]
        print(",".join(names))
        return 0

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


def _serves(registry: object, name: str, task: str) -> bool:
    try:
        return task in registry.load(name).tasks  # type: ignore[attr-defined]
    except Exception:  # a broken plugin serves nothing; plain `lossforge list` reports it
        return False


def main() -> None:
    """Console script entry: ``lossforge list`` or the Hydra app."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["list"]:
        sys.exit(list_components(arguments[1:]))
    if arguments[:1] == ["compare"]:
        from lossforge.evaluation.compare import main as compare

        sys.exit(compare(arguments[1:]))
    run_app()
