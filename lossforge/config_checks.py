"""Checks of the *composed* configuration, before anything is built, instantiated or recorded.

Called twice: by the command line on the configuration Hydra is about to run
([check_command_line][lossforge.config_checks.check_command_line], before Hydra instantiates its launcher, sweeper and
callbacks — a callback's constructor runs before any task function), and by every job on its own configuration
([check_job][lossforge.config_checks.check_job], before anything is built). Each failure is a
[ConfigCheckError][lossforge.config_checks.ConfigCheckError] that names the setting and says what to do.

**Which `_target_` may be instantiated** ([allowed_targets][lossforge.config_checks.allowed_targets]). Hydra imports and
calls whatever a `_target_` names, so every `_target_` anywhere in the composed configuration — whatever route put it
there: an override, `+hydra.callbacks.<name>={…}`, a `hydra.searchpath` entry with a config group option, a
`--config-dir` file — must be one that trusted, installed configuration already uses:

1. a `_target_` written in lossforge's own config package (`lossforge.conf`: its launchers, the Optuna
   sampler, the sweep callback);
2. one written in an installed lossforge plugin's config package (entry-point group `lossforge.configs`);
3. one that Hydra's own config package (its logging configs) uses, or an installed Hydra plugin registers in
   Hydra's ConfigStore (the basic, joblib and submitit launchers, the Optuna sweeper and its samplers).

"Names it would call" are `_target_` values and, in the logging configurations Hydra hands to
`logging.config.dictConfig` (`hydra.hydra_logging`, `hydra.job_logging`), each `()` factory and handler
or formatter `class`.

It must be a plain string equal to one of these (not an interpolation). Anything else is refused with the way
to do it properly: a component is a registered plugin (named by `loss=`, `miner=`, …), and a config
extends lossforge's through its `defaults:` list. `LOSSFORGE_ALLOW_TARGETS=1` switches the check off for one
command (you trust the target).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lossforge.contract import Switches, did_you_mean
from lossforge.tracking.secrets import credentials_in_uri, redact_uri

MAX_SEED = 2**32 - 1
"""The largest seed numpy and torch accept (`numpy.random.seed` takes 0 … 2**32 - 1)."""
_PRINTS_ONLY = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve", "--shell-completion", "-sc"}
"""Hydra flags that print something and exit without instantiating anything."""


class ConfigCheckError(ValueError):
    """A composed configuration lossforge refuses to run; the message names the setting and the remedy."""


# -- _target_ ------------------------------------------------------------------------------------------------
def find_targets(node: Any, path: str = "", *, classes: bool = False) -> Iterator[tuple[str, Any]]:
    """`(dotted path, value)` of every name a configuration makes Python import and call, at any depth (lists
    included): each `_target_` (Hydra's `instantiate`), each `()` (a factory of `logging.config.dictConfig`,
    which Hydra applies to `hydra.hydra_logging` / `hydra.job_logging`), and each `class` of a logging
    configuration (a handler's or formatter's class) — or anywhere, with `classes`.

    ```pycon
    >>> list(find_targets({"hydra": {"callbacks": {"x": {"_target_": "shutil.copyfile"}}}, "l": [{"_target_": 1}]}))
    [('hydra.callbacks.x._target_', 'shutil.copyfile'), ('l.0._target_', 1)]
    >>> list(find_targets({"hydra": {"job_logging": {"handlers": {"h": {"class": "x.Y", "()": "os.system"}}}}}))
    [('hydra.job_logging.handlers.h.class', 'x.Y'), ('hydra.job_logging.handlers.h.()', 'os.system')]

    ```
    """
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in ("_target_", "()") or (key == "class" and (classes or "_logging." in f"{path}.")):
                yield where, value
            else:
                yield from find_targets(value, where, classes=classes)
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from find_targets(value, f"{path}.{index}" if path else str(index), classes=classes)


def _yaml_targets(package: str) -> set[str]:
    """Every `_target_` written in the YAML files of config package `package`."""
    from importlib import resources

    import yaml

    found: set[str] = set()
    pending = [resources.files(package)]
    while pending:
        folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append(entry)
            elif entry.name.endswith((".yaml", ".yml")):
                try:
                    node = yaml.safe_load(entry.read_text())
                except (yaml.YAMLError, UnicodeDecodeError):
                    continue  # Hydra reports a broken file when it composes it
                found.update(str(value) for _, value in find_targets(node, classes=True) if isinstance(value, str))
    return found


def _config_store_targets() -> set[str]:
    """Every `_target_` in Hydra's ConfigStore: what installed Hydra plugins register (launchers, sweepers)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    found: set[str] = set()
    pending: list[Any] = [ConfigStore.instance().repo]
    while pending:
        folder = pending.pop()
        for entry in folder.values():
            if isinstance(entry, dict):
                pending.append(entry)
                continue
            try:
                node = OmegaConf.to_container(entry.node, resolve=False)
            except Exception:  # a schema that cannot be read as a container holds no target we could allow
                continue
            found.update(str(value) for _, value in find_targets(node, classes=True) if isinstance(value, str))
    return found


@functools.cache
def _package_targets() -> frozenset[str]:
    from hydra_plugins.lossforge_searchpath.lossforge_searchpath import plugin_config_packages

    found = _yaml_targets("lossforge.conf") | _yaml_targets("hydra.conf")  # Hydra's own: its logging handlers
    for _, package in plugin_config_packages():
        try:
            found |= _yaml_targets(package)
        except (ModuleNotFoundError, OSError):
            continue
    return frozenset(found)


def allowed_targets() -> frozenset[str]:
    """The `_target_` values this installation trusts: those in lossforge's and its plugins' config packages,
    and those installed Hydra plugins register (read when asked: plugins register on discovery)."""
    return _package_targets() | _config_store_targets()


def check_targets(config: Any, *, allowed: frozenset[str] | None = None, where: str = "") -> None:
    """Raise [ConfigCheckError][lossforge.config_checks.ConfigCheckError] for the first `_target_` in `config` (a plain
    container or an OmegaConf node) that is not in `allowed` (default:
    [allowed_targets][lossforge.config_checks.allowed_targets])."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(config):
        config = OmegaConf.to_container(config, resolve=False)
    targets = list(find_targets(config, where))
    if not targets:
        return
    allowed = allowed_targets() if allowed is None else allowed
    for path, value in targets:
        if isinstance(value, str) and value in allowed:
            continue
        raise ConfigCheckError(
            f"refusing to run: the configuration sets {path}={value!r}, and lossforge instantiates only the "
            f"`_target_`s (and logging classes) of its own and installed plugins' config packages (it would import "
            f"and call this one, before any run starts). To add a loss, miner, dataset or model, install a plugin "
            f"that registers it and name it (loss=<name>, see `lossforge list`); to reuse configs, write a config "
            f"file whose `defaults:` list extends lossforge's (docs/security.md). If you trust this target, "
            f"LOSSFORGE_ALLOW_TARGETS=1 allows it for one command."
        )


# -- tracking URI ---------------------------------------------------------------------------------------------
def check_tracking_uri(uri: str | None, *, setting: str = "logger.tracking_uri") -> None:
    """Refuse a tracking URI that carries credentials: a URI is printed, logged and stored in the run's record.

    ```pycon
    >>> check_tracking_uri("http://mlflow.internal:5000")
    >>> check_tracking_uri("http://alice:pw@mlflow.internal:5000")
    Traceback (most recent call last):
    ...
    lossforge.config_checks.ConfigCheckError: logger.tracking_uri=http://***@mlflow.internal:5000 carries ...

    ```
    """
    if not uri or not credentials_in_uri(uri):
        return
    host = redact_uri(uri).split("***@", 1)[-1]
    scheme = uri.split("://", 1)[0]
    raise ConfigCheckError(
        f"{setting}={redact_uri(uri)} carries credentials in the URI; lossforge will not use it, since a URI is "
        f"printed, logged and stored with the run. Credentials belong in the environment: "
        f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN), with "
        f"{setting}={scheme}://{host}"
    )


# -- numbers --------------------------------------------------------------------------------------------------
def _number_problem(name: str, value: Any, *, minimum: float, maximum: float | None = None, integer: bool) -> str:
    """Why `value` is no valid `name`, or `""`."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        return f"{name}={value!r} must be {kind}"
    if not math.isfinite(value):
        return f"{name}={value} must be finite"
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" to {maximum}" if maximum is not None else " or more"
        return f"{name}={value} is out of range: it must be from {minimum:g}{upper}"
    return ""


NUMBERS = (
    ("seed", 0, MAX_SEED, True, "the run seed seeds numpy and torch, which take 0 … 2**32 - 1"),
    ("dataset.split_seed", 0, MAX_SEED, True, "the split seed seeds numpy, which takes 0 … 2**32 - 1"),
    ("batch_size", 1, None, True, "the training batch size (per process)"),
    ("eval_batch_size", 1, None, True, "the validation/test batch size"),
)
"""`(setting, minimum, maximum, integer, why)` — the numbers every run reads, checked before anything is built."""


def check_numbers(config: Any) -> None:
    """Raise [ConfigCheckError][lossforge.config_checks.ConfigCheckError] naming the first out-of-range number (seeds,
    batch sizes, the learning rate; `trainer.max_epochs` is `training.build.check_trainer`'s) — before numpy's or
    Lightning's own message, which names no setting.

    ```pycon
    >>> from omegaconf import OmegaConf
    >>> check_numbers(OmegaConf.create({"seed": -1}))
    Traceback (most recent call last):
    ...
    lossforge.config_checks.ConfigCheckError: seed=-1 is out of range: it must be from 0 to 4294967295 (the run ...

    ```
    """
    from omegaconf import OmegaConf

    for setting, minimum, maximum, integer, why in NUMBERS:
        value = OmegaConf.select(config, setting, default=None)
        problem = _number_problem(setting, value, minimum=minimum, maximum=maximum, integer=integer)
        if problem:
            raise ConfigCheckError(f"{problem} ({why}).")
    lr = OmegaConf.select(config, "optimizer.lr", default=None)
    problem = _number_problem("optimizer.lr", lr, minimum=0, integer=False)
    if not problem and lr == 0:
        problem = "optimizer.lr=0 trains nothing"
    if problem:
        raise ConfigCheckError(
            f"{problem} (the optimizer's step size, typically 1e-4 … 1e-1; a rate at which the loss explodes "
            f"stops the run as diverged)."
        )


def check_trainer_arguments(trainer: Mapping[str, Any]) -> None:
    """Refuse `trainer.<key>` that Lightning's `Trainer` does not take (`+trainer.max_epoch=3`) — before
    Lightning's own TypeError, which fails the run after its MLflow run was created.

    ```pycon
    >>> check_trainer_arguments({"max_epoch": 3})
    Traceback (most recent call last):
    ...
    lossforge.config_checks.ConfigCheckError: trainer.max_epoch is not a setting of Lightning's Trainer. Did you ...

    ```
    """
    accepted = _trainer_parameters()
    for key in trainer:
        if key not in accepted:
            raise ConfigCheckError(
                f"trainer.{key} is not a setting of Lightning's Trainer.{did_you_mean(str(key), accepted, n=1)} "
                f"Its settings: {', '.join(sorted(accepted))}."
            )


@functools.cache
def _trainer_parameters() -> frozenset[str]:
    import inspect

    from lightning.pytorch import Trainer

    return frozenset(name for name in inspect.signature(Trainer.__init__).parameters if name != "self")


# -- the whole check ------------------------------------------------------------------------------------------
def check_job(config: Any, hydra_config: Any | None = None, *, environment: Mapping[str, str] | None = None) -> None:
    """Every check of one job's configuration (and its Hydra node), before anything is built or recorded."""
    import os

    environment = os.environ if environment is None else environment
    if not Switches.read(environment).allow_targets:
        check_targets(config)
        if hydra_config is not None:
            check_targets(hydra_config, where="hydra")
    check_tracking_uri(_logger_uri(config))
    check_tracking_uri(environment.get("MLFLOW_TRACKING_URI"), setting="MLFLOW_TRACKING_URI")
    check_numbers(config)
    trainer = config.get("trainer") if hasattr(config, "get") else None
    if trainer is not None:
        check_trainer_arguments(trainer)


def _logger_uri(config: Any) -> str | None:
    from omegaconf import OmegaConf

    value = OmegaConf.select(config, "logger.tracking_uri", default=None)
    return None if value is None else str(value)


def check_command_line(arguments: Sequence[str], *, config_path: str = "pkg://lossforge.conf") -> str | None:
    """Compose the configuration of `lossforge <arguments>` exactly as Hydra is about to (its own argument
    parser, search path, `--config-dir`, run mode) and check it; return the refusal, or `None`.

    Runs before Hydra instantiates anything from the configuration: the launcher, the sweeper and the
    callbacks, whose constructors run before any job. A composition that fails here is left to Hydra, which
    fails the same way before instantiating anything — except an override of a key that does not exist,
    answered here with the settings that do ([unknown_key_problem][lossforge.config_checks.unknown_key_problem]).
    """
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException
    from hydra.types import RunMode

    if _PRINTS_ONLY.intersection(arguments):
        return None
    try:
        args = get_args_parser().parse_args(list(arguments))
    except SystemExit:  # argparse's own message comes from Hydra in a moment
        return None
    search_path = create_automatic_config_search_path(None, None, args.config_path or config_path)
    if args.config_dir is not None:
        import os

        from hydra.core.config_search_path import SearchPathQuery

        search_path.prepend(
            provider="command-line",
            path=f"file://{os.path.abspath(args.config_dir)}",
            anchor=SearchPathQuery(provider="schema"),
        )
    config_name = args.config_name or "config"
    overrides = list(args.overrides)
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2(task_name="lossforge", config_search_path=search_path)
        mode = hydra.get_mode(config_name=config_name, overrides=overrides)
        run_mode = RunMode.MULTIRUN if args.multirun or mode == RunMode.MULTIRUN else RunMode.RUN
        try:
            config = hydra.compose_config(
                config_name=config_name, overrides=overrides, run_mode=run_mode, with_log_configuration=False
            )
        except ConfigCompositionException as error:
            return unknown_key_problem(str(error), hydra, config_name, overrides, OverridesParser.create())
        except Exception:
            return None
        try:
            check_job(config, None)
            if run_mode == RunMode.MULTIRUN:
                for job in swept_group_options(hydra, config, overrides):
                    check_targets(
                        hydra.compose_config(
                            config_name=config_name, overrides=job, run_mode=RunMode.RUN, with_log_configuration=False
                        )
                    )
        except ConfigCheckError as error:
            return str(error)
        except Exception:  # a job that does not compose fails in Hydra's launcher before it runs anything
            return None
        return None
    finally:
        GlobalHydra.instance().clear()


def swept_group_options(hydra: Any, config: Any, overrides: Sequence[str]) -> list[list[str]]:
    """The overrides of each distinct job configuration a sweep's config group options compose
    (`-m +extra=a,b` — an option file may set `hydra.job_logging`, which Hydra applies in each job before
    the job's own check runs). Sweeps over values are left out: a value cannot add a key under `hydra`. Both
    the command line's sweeps and `hydra.sweeper.params` count, as for Hydra's basic sweeper."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.get("sweeper", {}).get("params") or {}
    arguments = [*overrides, *(f"{key}={value}" for key, value in params.items())]
    repository = hydra.config_loader.repository
    fixed: list[str] = []
    swept: list[list[str]] = []
    for override in OverridesParser.create().parse_overrides(arguments):
        if not override.is_sweep_override():
            fixed.append(str(override.input_line))
        elif override.is_discrete_sweep() and repository.group_exists(override.key_or_group):
            key = override.get_key_element()
            swept.append([f"{key}={value}" for value in override.sweep_string_iterator()])
    return [[*fixed, *choice] for choice in itertools.product(*swept)] if swept else []


_MISSING_KEY = re.compile(r"Could not override '([^']+)'")


def unknown_key_problem(message: str, hydra: Any, config_name: str, overrides: list[str], parser: Any) -> str | None:
    """For Hydra's "Could not override 'trainer.max_epoch' … append with +": the setting that exists —
    a close key beside it (`trainer.max_epochs`) or one of the same name elsewhere (`dataset.batch_size` →
    the top-level `batch_size`) — before Hydra's advice to add the key with `+`."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from lossforge.tracking.runs import flatten

    match = _MISSING_KEY.search(message)
    if match is None:
        return None
    key = match.group(1)
    others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key and o.split("=", 1)[0] != key]
    try:
        config = hydra.compose_config(
            config_name=config_name, overrides=others, run_mode=RunMode.MULTIRUN, with_log_configuration=False
        )
    except Exception:
        return None
    plain = OmegaConf.to_container(config, resolve=False)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    settings = list(flatten({str(name): value for name, value in plain.items()}))
    parent, _, leaf = key.rpartition(".")
    beside = [setting.rpartition(".")[2] for setting in settings if setting.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(leaf, beside, n=1, cutoff=0.5)
    same = [setting for setting in settings if setting.rpartition(".")[2] == leaf and setting != key]
    if close:
        suggestion = f"Did you mean {parent + '.' if parent else ''}{close[0]}?"
    elif same:
        suggestion = f"The setting is {' or '.join(same)}: write {same[0]}=… instead."
    else:
        return None
    return (
        f"{key}: {parent or 'the configuration'} has no setting {leaf!r}. {suggestion} (Adding it with "
        f"+{key}=… would only pass on a setting nothing reads.)"
    )
