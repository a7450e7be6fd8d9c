"""The command line.

* ``python -m lossforge [overrides]`` — the Hydra app: one experiment, or a sweep with ``-m``.
* ``lossforge [overrides]`` — the same app, as a console script.
* ``lossforge list`` — every loss and miner: task, parameters and defaults, the package that provides it,
  and plugins that failed to load.
* ``lossforge check [DISTRIBUTION …]`` — the contract kit over installed plugins: a verdict per component.
* ``lossforge compare`` — a sweep's runs read back from MLflow as a table and a plot (``--help``).
* ``lossforge benchmark`` — the fair comparison protocol: equal tuning budget, K seeds, a verdict.
* ``lossforge ui`` — the MLflow dashboard on the runs' store, on 127.0.0.1 and a free port.
* ``lossforge plot [overrides]`` — each loss and its derivative against its task's axis (``--help``).

Heavy imports (torch, Lightning, MLflow) happen only once an experiment actually runs, so help and
listing stay fast.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lossforge.contract import Switches, did_you_mean
from lossforge.training import DiskFullError

_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--info"}
#: Hydra flags that print something and exit without running a job.
_RUNS_NOTHING = _HELP_FLAGS | {"--cfg", "-c", "--resolve", "--shell-completion", "-sc"}
#: Errors that mean "the input is wrong", not "lossforge is broken": one paragraph, no traceback wall.
_USER_ERRORS = (LookupError, ValueError, TypeError, ConnectionError, FloatingPointError, DiskFullError)
#: Config groups whose options a command line names; checked before Hydra so a typo gets a suggestion.
_YAML_GROUPS = (
    "model",
    "dataset",
    "sampler",
    "memory",
    "optimizer",
    "trainer",
    "logger",
    "experiment",
    "hparams_search",
)
log = logging.getLogger("lossforge")


@hydra.main(config_path="pkg://lossforge.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    _quiet_lightning()  # before Lightning is imported: its import-time lines are quiet too
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from lossforge.tracking import resolve_tracking_uri, sweep_job
    from lossforge.tracking.sweep import SweepOptions, run_sweep_job
    from lossforge.training.progress import quiet_sweep

    hydra_config = HydraConfig.get()
    share_cores(hydra_config.launcher)
    multirun = hydra_config.mode == RunMode.MULTIRUN
    if quiet_sweep(
        multirun=multirun,
        several_jobs=multirun and _several_jobs(hydra_config),
        verbose_on_command_line=any(_override_key(o) == "verbose" for o in hydra_config.overrides.task),
    ):
        cfg.verbose = False
    output_dir = Path(hydra_config.runtime.output_dir)
    base_dir = Path(hydra.utils.get_original_cwd())
    job = sweep_job(hydra_config)
    sweep_options = SweepOptions.of(cfg)
    with open_dict(cfg):  # how the sweep treats its jobs, not part of a run's config (nor its MLflow params)
        cfg.pop("sweep", None)

    def train_run(tags: Mapping[str, str] | None = None) -> dict[str, float]:
        from lossforge.training.run import train  # Lightning: not imported for a job that resume skips

        return train(cfg, base_dir=base_dir, output_dir=output_dir, sweep_job=job, tags=tags)

    try:
        if job is None:
            metrics: dict[str, float] | None = train_run()
        else:  # a failing job is recorded and the sweep goes on (lossforge.tracking.sweep)
            metrics = run_sweep_job(
                job,
                cfg,
                train_run,
                options=sweep_options,
                tracking_uri=resolve_tracking_uri(cfg.logger.get("tracking_uri"), base_dir=base_dir),
                quiet_errors=() if Switches.read().traceback else _USER_ERRORS,
            )
    except _USER_ERRORS as error:
        if Switches.read().traceback:
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
    if not target:
        return None
    return float("nan") if metrics is None else metrics.get(target)  # a failed job: a sweeper's failed trial


def _override_key(override: str) -> str:
    """``verbose`` of ``verbose=true``, ``+verbose=true`` and ``~verbose``."""
    return override.split("=", 1)[0].lstrip("+~")


def _several_jobs(hydra_config: Any) -> bool:
    """Whether this multirun job's sweep launches more than one job: a later job than the first, a sweeper
    with parameters or trials of its own (an experiment's sweep, Optuna), or a sweep among the command's
    overrides (read from Hydra's record of the multirun, ``multirun.yaml`` in the sweep directory)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    if int(hydra_config.job.num) > 0:
        return True
    sweeper = hydra_config.sweeper
    if sweeper.get("params") or (sweeper.get("n_trials") or 0) > 1:
        return True
    record = Path(hydra_config.runtime.cwd) / str(hydra_config.sweep.dir) / "multirun.yaml"
    if not record.is_file():
        return False
    command = list(OmegaConf.load(record).hydra.overrides.task)
    return any(override.is_sweep_override() for override in OverridesParser.create().parse_overrides(command))


def _quiet_lightning() -> None:
    """Keep Lightning's warnings and drop its info lines ("GPU available: …", "💡 Tip: …", "`Trainer.fit`
    stopped: …"): lossforge logs what a run does, and ``training.progress`` shows the epochs. Lightning
    logs through its own handler and Hydra's root handler (every line twice); keep one copy."""
    from lossforge.training import ignore_known_warnings

    for name in ("lightning.pytorch", "lightning.fabric"):  # fabric: DDP's "Initializing distributed"
        lightning_log = logging.getLogger(name)
        lightning_log.setLevel(logging.WARNING)
        lightning_log.propagate = False
    ignore_known_warnings()  # LeafSpec, "srun is available": see lossforge.training.KNOWN_WARNINGS


def share_cores(launcher: Any) -> None:
    """Under Hydra's joblib launcher (``hydra/launcher=joblib``) each job gets its share of the cores this
    process may run on (its CPU affinity: a SLURM allocation or ``taskset`` gives fewer than the machine
    has): oversubscribed threads are slower, and under load far slower — two torch threads per job
    spin-wait on each other. lossforge's own ``hydra/launcher=parallel`` sets its workers' share itself
    (``lossforge.parallel``)."""
    parallel_jobs = launcher.get("n_jobs")
    if str(launcher.get("_target_", "")).endswith("JoblibLauncher") and parallel_jobs and parallel_jobs > 1:
        import torch

        from lossforge.parallel import threads_per_job, usable_cores

        torch.set_num_threads(threads_per_job(parallel_jobs, usable_cores()))


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
    """A teaching error for the first override that cannot work, before Hydra sees it: one naming an unknown
    option, one that smuggles in a ``_target_`` (configs build registered components only, unless
    ``LOSSFORGE_ALLOW_TARGETS=1``), one that needs a Hydra plugin that is not installed, or a
    ``loss.<param>`` / ``miner.<param>`` the chosen component does not have (Hydra's answer to that would be
    "append it with +", a detour)."""
    allow_targets = Switches.read().allow_targets
    for argument in arguments:
        key, equals, value = argument.partition("=")
        if "_target_" in key and not allow_targets:
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
            hint = did_you_mean(option, options)
            where = " `lossforge list` shows them, with their packages." if group in ("loss", "miner") else ""
            return f"unknown {group} {option!r}.{hint} Available: {', '.join(options)}.{where}"
    return _missing_hydra_plugin(arguments) or _unknown_parameter(arguments)


#: Hydra's plugin options → the module that provides each, its pip package, and what it is.
_HYDRA_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "joblib launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit launcher"),
    "optuna": ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper", "Optuna sweeper"),
}
#: Groups whose options are, or whose YAML files pull in, one of ``_HYDRA_PLUGINS``.
_PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper", "hparams_search", "experiment")


def _missing_hydra_plugin(arguments: list[str]) -> str | None:
    """The README's sweeps need Hydra plugins that a plain install lacks; Hydra's own error ("Could not load
    'hydra/launcher/joblib'") does not say which package to install."""
    for argument in arguments:
        key, equals, value = argument.partition("=")
        group = key.lstrip("+~")
        if not equals or group not in _PLUGIN_GROUPS or "(" in value:
            continue
        for option in value.split(","):
            for plugin in _hydra_plugins_of(group, option):
                module, package, what = _HYDRA_PLUGINS[plugin]
                if not _importable(module):
                    return (
                        f"{group}={option} needs Hydra's {what}: .venv/bin/pip install -e '.[sweeps]' "
                        f"(or pip install {package})"
                    )
    return None


def _importable(module: str) -> bool:
    """Whether ``module`` is installed, found without importing it (nor torch, through it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing too
        return False


def _hydra_plugins_of(group: str, option: str) -> list[str]:
    """The Hydra plugin options that ``group=option`` selects: the option itself (``hydra/launcher=joblib``),
    or those its lossforge YAML file extends or overrides (``parallel.yaml``: ``defaults: [joblib]``)."""
    if group.startswith("hydra/") and option in _HYDRA_PLUGINS:
        return [option]
    defaults = _yaml_defaults(group, option)
    plugins = []
    for entry in defaults:
        if isinstance(entry, str) and group.startswith("hydra/"):
            plugins.append(entry)
        elif isinstance(entry, dict):
            for entry_key, entry_value in entry.items():
                if str(entry_key).removeprefix("override ").lstrip("/").startswith("hydra/"):
                    plugins.append(str(entry_value))
    return [plugin for plugin in plugins if plugin in _HYDRA_PLUGINS]


def _yaml_defaults(group: str, option: str) -> list[object]:
    """The defaults list of lossforge's own ``conf/<group>/<option>.yaml`` (empty if it has none, or the
    option comes from a plugin)."""
    from importlib import resources

    import yaml

    path = resources.files("lossforge.conf").joinpath(*group.split("/"), f"{option}.yaml")
    if not path.is_file():
        return []
    node = yaml.safe_load(path.read_text())
    defaults = node.get("defaults") if isinstance(node, dict) else None
    return defaults if isinstance(defaults, list) else []


#: Groups whose YAML files may choose the loss or miner: with one on the command line, which component a
#: ``loss.<param>`` belongs to is known only after Hydra composes the config.
_CHOOSING_GROUPS = ("experiment", "hparams_search", "metric_setup")
_DEFAULT_COMPONENT = {"loss": "cross_entropy", "miner": None}  # conf/config.yaml's defaults
_PLURAL = {"loss": "losses", "miner": "miners"}


def _unknown_parameter(arguments: list[str]) -> str | None:
    """``loss.gama=2`` → "loss 'focal' has no parameter 'gama'. Did you mean 'gamma'?", checked against the
    loss (or miner) the same command line chooses, else the config's default; in a sweep over several,
    against each."""
    default = {kind: [name] if name else [] for kind, name in _DEFAULT_COMPONENT.items()}
    chosen: dict[str, list[str] | None] = dict(default)  # None: not known before Hydra composes the config
    parameters: list[tuple[str, str, str]] = []  # (kind, parameter, argument)
    for argument in arguments:
        key, equals, value = argument.partition("=")
        key = key.lstrip("+~")
        kind, dot, parameter = key.partition(".")
        if not equals:
            continue
        if key in chosen:
            chosen[key] = None if "(" in value else [name for name in value.split(",") if name not in ("", "null")]
        elif key.split("/")[0] in _CHOOSING_GROUPS:
            chosen = dict.fromkeys(chosen)
        elif dot and kind in chosen and parameter.partition(".")[0] != "name":
            parameters.append((kind, parameter.partition(".")[0], argument))
    for kind, parameter, argument in parameters:
        names = chosen[kind]
        if names is None:
            continue
        if not names:
            return f"{argument!r} sets a parameter of the {kind}, but no {kind} is chosen: add {kind}=<name>."
        problem = _parameter_problem(kind, names, parameter)
        if problem and names is default[kind]:
            taking = _taking(kind, parameter)
            problem += f" {names[0]} is the default {kind}; choose another with {kind}=<name>{taking}."
        if problem:
            return problem
    return None


def _taking(kind: str, parameter: str) -> str:
    """``" (these take 'gamma': focal)"`` — the components that have ``parameter`` — or ``""``."""
    from lossforge.registry import LOSSES, MINERS

    registry = LOSSES if kind == "loss" else MINERS
    taking = []
    for name in registry.names():
        try:
            if parameter in registry.parameters(name):
                taking.append(name)
        except Exception:  # a broken plugin is reported by `lossforge list`, not here
            continue
    return f" (these take {parameter!r}: {', '.join(taking)})" if taking else ""


def _parameter_problem(kind: str, names: list[str], parameter: str) -> str | None:
    """Why ``<kind>.<parameter>`` fits not every one of ``names``, or ``None``. A component that fails to load,
    takes ``**kwargs``, or is a plugin's YAML option is left to the registry, which reports it when building."""
    import inspect

    from lossforge.registry import LOSSES, MINERS

    registry = LOSSES if kind == "loss" else MINERS
    accepted: dict[str, list[str]] = {}
    for name in names:
        try:
            component = registry.load(name)
            accepted[name] = list(registry.parameters(name))
        except Exception:
            return None
        if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(component.__init__).parameters.values()):
            return None
    lacking = [name for name in names if parameter not in accepted[name]]
    if not lacking:
        return None
    name = lacking[0]
    having = [other for other in names if other not in lacking]
    message = (
        f"{kind} {name!r} has no parameter {parameter!r}.{did_you_mean(parameter, accepted[name], n=1)} "
        f"Its parameters: {', '.join(accepted[name]) or 'none'}."
    )
    if having:
        message += (
            f" The sweep {kind}={','.join(names)} sets {kind}.{parameter} for every {kind}, but only "
            f"{', '.join(repr(other) for other in having)} {'has' if len(having) == 1 else 'have'} it: "
            f"sweep the {_PLURAL[kind]} that take it separately."
        )
    return message


def run_app() -> None:
    """Register every loss/miner as a Hydra option, then hand the command line to Hydra."""
    from lossforge.hydra_options import register_components

    if {"--help", "-h"}.intersection(sys.argv[1:]):
        print(app_help(), end="")  # Hydra's own help composes every group to list it; --hydra-help gives it
        raise SystemExit(0)
    problem = check_overrides(sys.argv[1:])
    if problem:
        print(f"lossforge: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    if _parallel_sweep(sys.argv[1:]):
        from lossforge.parallel import start_fork_server

        start_fork_server()  # the jobs' imports start now, beside the config and MLflow set-up (lossforge.parallel)
    register_components(with_parameters=not _HELP_FLAGS.intersection(sys.argv[1:]))
    _app()


def _parallel_sweep(arguments: list[str]) -> bool:
    """Whether the command line is a sweep under ``hydra/launcher=parallel``. A sweep that chooses that
    launcher in a config file is recognised later, when the sweep starts (``lossforge.tracking.sweep``).

    Example:
        >>> _parallel_sweep(["-m", "hydra/launcher=parallel", "seed=0,1"]), _parallel_sweep(["hydra/launcher=parallel"])
        (True, False)
    """
    if not {"-m", "--multirun"}.intersection(arguments) or _RUNS_NOTHING.intersection(arguments):
        return False
    return any(argument.lstrip("+") == "hydra/launcher=parallel" for argument in arguments)


def _quiet_hydra_schema_matching() -> None:
    """Drop Hydra's "'hydra/launcher/submitit_slurm' is validated against ConfigStore schema with the same
    name … deprecated" warning. lossforge's ``conf/hydra/launcher/submitit_*.yaml`` take the place of the
    submitit plugin's entries of the same name on purpose (see the comment in ``submitit_slurm.yaml``), so
    every ``hydra/launcher=submitit_slurm`` sweep printed it, and its user can do nothing about it. Only
    that message, and only for launcher configs, is filtered."""
    import warnings

    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/[^']*' is validated against ConfigStore schema with the same name"
    )


# At import, not in ``run_app``: a submitit job process composes the config again (and would print the warning
# into each job's log) after importing this module to unpickle ``_app``, without running ``run_app``.
_quiet_hydra_schema_matching()


def app_help() -> str:
    """``lossforge --help``: the commands, then every config group with its options (losses and miners by
    registry name) — read from the config files and entry points, without composing anything."""
    from importlib import resources

    from omegaconf import OmegaConf

    config = OmegaConf.load(str(resources.files("lossforge.conf") / "config.yaml"))
    lines = [str(config.hydra.help.header).rstrip(), "", "== Config groups (group=option) =="]
    for group in ("loss", "miner", *_YAML_GROUPS):
        lines.append(f"  {group}: {', '.join(group_options(group))}")
    lines += [
        "",
        "Parameters are overrides too: loss.<param>=… (lossforge list shows each loss's), trainer.max_epochs=5,",
        "dataset.<param>=…; -m runs a sweep (loss=l1,l2 seed=0,1,2).",
        "",
    ]
    return "\n".join(lines)


def list_components(arguments: list[str] | None = None) -> int:
    """``lossforge list [--task TASK] [--names]``: every registered loss and miner, or only the losses that
    declare ``TASK``; ``--names`` prints them comma-separated, ready for a sweep. Exit status 1 if a plugin
    failed to load."""
    import argparse

    from lossforge import list_losses
    from lossforge.contract import TASKS
    from lossforge.registry import LOSSES, MINERS

    parser = argparse.ArgumentParser(prog="lossforge list", description="List the registered losses and miners.")
    parser.add_argument(
        "--task", choices=[str(task) for task in TASKS], help="only the losses that can train this task"
    )
    parser.add_argument("--names", action="store_true", help="print just the names, comma-separated")
    options = parser.parse_args(arguments or [])
    if options.task or options.names:
        print(",".join(list_losses(task=options.task)))
        return 0

    from lossforge.catalog import all_summaries

    described = all_summaries()  # cached: listing imports no component while none changed
    width = max((len(entry.name) for entry in described), default=0)
    for title, kind, registry in (("Losses", "loss", LOSSES), ("Miners", "miner", MINERS)):
        print(f"{title}:")
        for entry in (entry for entry in described if entry.kind == kind):
            if entry.error is not None:
                print(f"  {entry.name:<{width}} FAILED  {entry.provider}\n      {entry.error}")
                continue
            print(f"  {entry.name:<{width}} {entry.served:<22} {entry.provider}")
            if entry.parameters:
                print("      " + ", ".join(entry.parameters))
            print(f"      tune: {entry.tune}")
        for name, providers in registry.conflicts().items():
            print(f"  {name!r} is registered by several packages: {', '.join(providers)}")
        print()
    return 1 if any(entry.error is not None for entry in described) else 0


def check_components(arguments: list[str] | None = None) -> int:
    """``lossforge check [DISTRIBUTION …]``: run the contract kit (:mod:`lossforge.testing`) over the
    installed losses and miners — of the named packages, or all — and print a verdict per component and
    every broken promise. Exit status 1 if any component fails."""
    import argparse

    from lossforge.registry import LOSSES, MINERS, RegistryError
    from lossforge.testing import loss_checks, loss_names, miner_checks, miner_names

    parser = argparse.ArgumentParser(
        prog="lossforge check", description="Check installed losses and miners against lossforge's plugin contract."
    )
    parser.add_argument("distributions", nargs="*", metavar="DISTRIBUTION", help="packages to check (default: all)")
    options = parser.parse_args(arguments or [])
    wanted = options.distributions or [None]
    components = [
        (kind, name, registry, checks)
        for kind, registry, names, checks in (
            ("loss", LOSSES, loss_names, loss_checks),
            ("miner", MINERS, miner_names, miner_checks),
        )
        for distribution in wanted
        for name in names(distribution=distribution)
    ]
    if not components:
        print(f"lossforge check: no loss or miner is registered by {', '.join(options.distributions)}.")
        return 1
    failed = 0
    for kind, name, registry, checks in components:
        try:
            broken = [(check.name, _failure(check)) for check in checks(name)]
        except (RegistryError, TypeError, ValueError) as error:
            broken = [("load", str(error))]
        broken = [(check, message) for check, message in broken if message is not None]
        failed += bool(broken)
        print(f"{'FAIL' if broken else 'ok  '}  {kind:<5} {name:<28} {registry.info(name).provider}")
        for check, message in broken:
            print(f"        {check}: {message}")
    print(f"\n{len(components) - failed} of {len(components)} components meet the contract.")
    return 1 if failed else 0


def _failure(check: Callable[[], None]) -> str | None:
    """What a check's promise broke, or ``None`` if it held."""
    try:
        check()
    except AssertionError as error:
        return str(error)
    return None


def benchmark(arguments: list[str] | None = None) -> int:
    """``lossforge benchmark [OVERRIDE …] [options]``: the fair comparison protocol (:mod:`lossforge.protocol`)
    — every loss tuned with the same budget on validation, its best configuration retrained with K seeds and
    tested once, and a verdict per loss against a baseline. Exit status 1 if an entry failed."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="lossforge benchmark",
        description=(
            "Compare losses fairly: the same number of tuning trials for each (validation only), the best "
            "configuration of each retrained with K seeds and tested once, and a statistical verdict against a "
            "baseline. Re-running the same command resumes it."
        ),
        epilog="Example: lossforge benchmark dataset=digits_imbalanced --losses cross_entropy,focal --budget small",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the base experiment (dataset=…, model=…)")
    parser.add_argument("--losses", help="comma-separated losses (or loss+miner); default: every loss of the task")
    parser.add_argument("--budget", default="default", help="tiny | small | default (trials × seeds)")
    parser.add_argument("--trials", type=int, help="tuning trials per loss (overrides the budget's)")
    parser.add_argument("--seeds", type=int, help="final seeds per loss (overrides the budget's)")
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs for every run (overrides the budget's)")
    parser.add_argument("--baseline", help="the loss every other is judged against (default: cross_entropy)")
    parser.add_argument("--name", help="the comparison's name; the same name resumes it (default: derived)")
    parser.add_argument("--no-pruner", action="store_true", help="run every trial to its last epoch")
    parser.add_argument("--seed", type=int, default=0, help="the tuning sampler's seed")
    parser.add_argument(
        "--class-folds", type=int, default=0, help="metric learning: tune with k folds over class partitions"
    )
    options = parser.parse_args(arguments or [])

    import dataclasses

    from lossforge.protocol.plan import BUDGETS, Entry
    from lossforge.protocol.report import print_comparison
    from lossforge.protocol.runner import Settings, run_protocol

    if options.budget not in BUDGETS:
        parser.error(
            f"unknown budget {options.budget!r}.{did_you_mean(options.budget, BUDGETS)} Available: {', '.join(BUDGETS)}"
        )
    budget = BUDGETS[options.budget]
    changes = {"trials": options.trials, "seeds": options.seeds, "max_epochs": options.epochs}
    try:
        budget = dataclasses.replace(budget, **{key: value for key, value in changes.items() if value is not None})
        entries = tuple(Entry.parse(text) for text in options.losses.split(",")) if options.losses else ()
        settings = Settings(
            overrides=tuple(options.overrides),
            entries=entries,
            budget=budget,
            baseline=options.baseline,
            name=options.name,
            pruner=not options.no_pruner,
            seed=options.seed,
            class_folds=options.class_folds,
        )
        _quiet_lightning()
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("lossforge.protocol").setLevel(logging.INFO)  # its progress, not every run's build log
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        comparison = run_protocol(settings, base_dir=Path.cwd())
    except _USER_ERRORS as error:
        if Switches.read().traceback:
            raise
        print(f"lossforge: error: {error}\n(LOSSFORGE_TRACEBACK=1 shows the traceback)", file=sys.stderr, flush=True)
        return 1
    print_comparison(comparison)
    return 1 if any(outcome.error for outcome in comparison.outcomes) else 0


#: The subcommands: name → ``"module:function"``, called with the remaining arguments, returning the exit
#: status. Imported only when used, so each command pays for its own imports alone.
SUBCOMMANDS = {
    "list": "lossforge.cli:list_components",
    "check": "lossforge.cli:check_components",
    "compare": "lossforge.evaluation.compare:main",
    "benchmark": "lossforge.cli:benchmark",
    "plot": "lossforge.evaluation.loss_figures:main",
    "ui": "lossforge.tracking.ui:main",
}


def main() -> None:
    """Console script entry: a subcommand (:data:`SUBCOMMANDS`) or the Hydra app."""
    import atexit
    import gc
    import importlib

    # Last of all at exit: put every object out of the garbage collector's reach. The interpreter's final
    # collections would otherwise walk everything torch, Lightning and MLflow allocated — 1.2–1.6 s of
    # every command's exit on this machine, for memory the OS takes back anyway. atexit handlers, flushes
    # and closing files still run as before; only cyclic garbage is left uncollected.
    atexit.register(gc.freeze)

    arguments = sys.argv[1:]
    if arguments[:1] and arguments[0] in SUBCOMMANDS:
        module, function = SUBCOMMANDS[arguments[0]].split(":")
        sys.exit(getattr(importlib.import_module(module), function)(arguments[1:]))
    run_app()
