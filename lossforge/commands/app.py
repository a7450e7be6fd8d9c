"""The Hydra app: `lossforge [overrides]` and `python -m lossforge [overrides]` — one experiment, or a
sweep with `-m`. The overrides are checked first ([lossforge.overrides][]), every registered loss and
miner becomes a Hydra option, then Hydra composes the config and runs `_app`, once per job.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lossforge.commands._common import USER_ERRORS, quiet_lightning
from lossforge.contract import Switches
from lossforge.overrides import YAML_GROUPS, check_overrides, group_options
from lossforge.run_dirs import register_launch_id

_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--info"}


_RUNS_NOTHING = _HELP_FLAGS | {"--cfg", "-c", "--resolve", "--shell-completion", "-sc"}
"""Hydra flags that print something and exit without running a job."""
log = logging.getLogger("lossforge")


@hydra.main(config_path="pkg://lossforge.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    quiet_lightning()  # before Lightning is imported: its import-time lines are quiet too
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from lossforge.sweeps.jobs import SweepOptions, run_sweep_job
    from lossforge.tracking import resolve_tracking_uri, sweep_job
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
        tuning_trial = cfg.pop("tuning_trial", None)  # an Optuna sweep's trial (hydra_plugins.lossforge_optuna)

    def train_run(tags: Mapping[str, str] | None = None) -> dict[str, float]:
        from lossforge.api import train
        from lossforge.config_checks import check_job
        from lossforge.training.pruning import trial_of_job  # Lightning: not imported for a job that resume skips

        check_job(cfg, hydra_config)  # this job's own composed config, before anything is built or recorded

        reporter = trial_of_job(tuning_trial)
        callbacks = [reporter] if reporter is not None else []
        trained = train(
            config=cfg, base_dir=base_dir, output_dir=output_dir, sweep_job=job, tags=tags, callbacks=callbacks
        )
        return trained.metrics

    try:
        if job is None:
            metrics: dict[str, float] | None = train_run()
        else:  # a failing job is recorded and the sweep goes on (lossforge.sweeps.multirun)
            metrics = run_sweep_job(
                job,
                cfg,
                train_run,
                options=sweep_options,
                tracking_uri=resolve_tracking_uri(cfg.logger.get("tracking_uri"), base_dir=base_dir),
                quiet_errors=() if Switches.read().traceback else USER_ERRORS,
            )
    except USER_ERRORS as error:
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
    """`verbose` of `verbose=true`, `+verbose=true` and `~verbose`."""
    return override.split("=", 1)[0].lstrip("+~")


def _several_jobs(hydra_config: Any) -> bool:
    """Whether this multirun job's sweep launches more than one job: a later job than the first, a sweeper
    with parameters or trials of its own (an experiment's sweep, Optuna), or a sweep among the command's
    overrides (read from Hydra's record of the multirun, `multirun.yaml` in the sweep directory)."""
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


def share_cores(launcher: Any) -> None:
    """Under Hydra's joblib launcher (`hydra/launcher=joblib`) each job gets its share of the cores this
    process may run on (its CPU affinity: a SLURM allocation or `taskset` gives fewer than the machine
    has): oversubscribed threads are slower, and under load far slower — two torch threads per job
    spin-wait on each other. lossforge's own `hydra/launcher=parallel` sets its workers' share itself
    (`lossforge.sweeps.parallel`)."""
    parallel_jobs = launcher.get("n_jobs")
    if str(launcher.get("_target_", "")).endswith("JoblibLauncher") and parallel_jobs and parallel_jobs > 1:
        import torch

        from lossforge.sweeps.parallel import threads_per_job, usable_cores

        torch.set_num_threads(threads_per_job(parallel_jobs, usable_cores()))


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
        from lossforge.sweeps.parallel import start_fork_server

        start_fork_server()  # the jobs' imports start now, beside the config and MLflow set-up (sweeps.parallel)
    register_components(with_parameters=not _HELP_FLAGS.intersection(sys.argv[1:]))
    _register_launcher()
    from lossforge.config_checks import check_command_line

    problem = check_command_line(sys.argv[1:])  # the composed config, before Hydra instantiates any of it
    if problem:
        print(f"lossforge: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    _app()


def _register_launcher() -> None:
    """Register lossforge's `hydra/launcher=parallel` and `hydra/sweeper=optuna` by hand: Hydra finds
    plugins by scanning the `hydra_plugins` namespace, which setuptools' editable installs hide (Hydra issue
    2359). Here, at the top of the layers, and not in [lossforge.hydra_options][], which sits below the
    launchers. Importing the sweeper stores its config node (`hydra/sweeper/optuna`)."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.lossforge_optuna.optuna_sweeper import OptunaSweeper
    from hydra_plugins.lossforge_parallel.parallel_launcher import ParallelLauncher

    Plugins.instance().register(ParallelLauncher)
    Plugins.instance().register(OptunaSweeper)


def _parallel_sweep(arguments: list[str]) -> bool:
    """Whether the command line is a sweep under `hydra/launcher=parallel`. A sweep that chooses that
    launcher in a config file is recognised later, when the sweep starts (`lossforge.sweeps.multirun`).

    Examples:
        >>> _parallel_sweep(["-m", "hydra/launcher=parallel", "seed=0,1"]), _parallel_sweep(["hydra/launcher=parallel"])
        (True, False)
    """
    if not {"-m", "--multirun"}.intersection(arguments) or _RUNS_NOTHING.intersection(arguments):
        return False
    return any(argument.lstrip("+") == "hydra/launcher=parallel" for argument in arguments)


def _quiet_hydra_schema_matching() -> None:
    """Drop Hydra's "'hydra/launcher/submitit_slurm' is validated against ConfigStore schema with the same
    name … deprecated" warning. lossforge's `conf/hydra/launcher/submitit_*.yaml` take the place of the
    submitit plugin's entries of the same name on purpose (see the comment in `submitit_slurm.yaml`), so
    every `hydra/launcher=submitit_slurm` sweep printed it, and its user can do nothing about it. Only
    that message, and only for launcher configs, is filtered."""
    import warnings

    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/[^']*' is validated against ConfigStore schema with the same name"
    )


# At import, not in ``run_app``: a submitit job process composes the config again (and would print the warning
# into each job's log) after importing this module to unpickle ``_app``, without running ``run_app``.
_quiet_hydra_schema_matching()
register_launch_id()  # ${lossforge.launch_id:} in hydra.run.dir / hydra.sweep.dir (lossforge.run_dirs)


def app_help() -> str:
    """`lossforge --help`: the commands, then every config group with its options (losses and miners by
    registry name) — read from the config files and entry points, without composing anything."""
    from importlib import resources

    from omegaconf import OmegaConf

    config = OmegaConf.load(str(resources.files("lossforge.conf") / "config.yaml"))
    lines = [str(config.hydra.help.header).rstrip(), "", "== Config groups (group=option) =="]
    for group in ("loss", "miner", *YAML_GROUPS):
        lines.append(f"  {group}: {', '.join(group_options(group))}")
    lines += [
        "",
        "Parameters are overrides too: loss.<param>=… (lossforge list shows each loss's), trainer.max_epochs=5,",
        "dataset.<param>=…; -m runs a sweep (loss=l1,l2 seed=0,1,2).",
        "",
    ]
    return "\n".join(lines)
