"""Checks of a command line's overrides before Hydra sees them, shared by the Hydra app and `lossforge plot`:
an unknown option gets a "did you mean", a `_target_` is refused, a missing Hydra plugin is named with its
package, and a `loss.<param>` the chosen loss does not have is caught
([check_overrides][lossforge.overrides.check_overrides]).

Beside [lossforge.hydra_options][] (the registry as Hydra options): both read the registry and the config
files, never a run. Nothing here imports torch unless a component must be loaded to learn its parameters.
"""

from __future__ import annotations

from lossforge.contract import did_you_mean

YAML_GROUPS = (
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
"""Config groups whose options a command line names; checked before Hydra so a typo gets a suggestion."""


def group_options(group: str, config_dir: str | None = None) -> list[str]:
    """The options of a config group: registry names for `loss`/`miner`/`dataset`/`model`, YAML files
    for the rest, the YAML files plugins ship for it (their `lossforge.configs` folders), and those of the
    user's `--config-dir`."""
    from pathlib import Path

    from hydra_plugins.lossforge_searchpath.lossforge_searchpath import plugin_config_options

    users = set()
    if config_dir and (Path(config_dir).expanduser() / group).is_dir():
        users = {path.stem for path in (Path(config_dir).expanduser() / group).glob("*.yaml")}
    names: set[str] = set()
    if group in ("loss", "miner", "dataset", "model"):
        from lossforge.registry import REGISTRIES

        names = set(REGISTRIES[group].names())
        if group in ("loss", "miner"):
            return sorted({*names, *plugin_config_options(group), *users})
    from importlib import resources

    folder = resources.files("lossforge.conf") / group
    own = {entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml")}
    return sorted(own | names | users | set(plugin_config_options(group)))


def config_dir_argument(arguments: list[str]) -> str | None:
    """The folder a `--config-dir DIR` / `--config-dir=DIR` / `-cd DIR` argument names, if any.

    ```pycon
    >>> config_dir_argument(["-cd", "mine", "dataset=x"]), config_dir_argument(["--config-dir=mine"])
    ('mine', 'mine')

    ```
    """
    for index, argument in enumerate(arguments):
        if argument.startswith("--config-dir="):
            return argument.partition("=")[2]
        if argument in ("--config-dir", "-cd") and index + 1 < len(arguments):
            return arguments[index + 1]
    return None


def check_overrides(arguments: list[str]) -> str | None:
    """A teaching error for the first override that cannot work, before Hydra sees it: one naming an unknown
    option, one that needs a Hydra plugin that is not installed, or a `loss.<param>` / `miner.<param>` the
    chosen component does not have (Hydra's answer to that would be "append it with +", a detour). A
    `_target_` is checked on the composed config instead ([lossforge.config_checks][])."""
    config_dir = config_dir_argument(arguments)
    for argument in arguments:
        key, equals, value = argument.partition("=")
        group = key.lstrip("+~")
        if not equals or group not in ("loss", "miner", *YAML_GROUPS) or "(" in value:
            continue
        options = group_options(group, config_dir)
        for option in value.split(","):
            if option in ("null", "") or option in options:
                continue
            conflict = _registry_conflict(group, option)
            if conflict:
                return conflict
            hint = did_you_mean(option, options)
            where = (
                f" `lossforge list --kind {group}` shows them, with their packages."
                if group in ("loss", "miner", "dataset", "model")
                else ""
            )
            return f"unknown {group} {option!r}.{hint} Available: {', '.join(options)}.{where}"
    return _missing_hydra_plugin(arguments) or _unknown_parameter(arguments)


def _registry_conflict(group: str, option: str) -> str | None:
    """The registry's own message for a loss or miner name that several packages register (it names them
    and their qualified names), rather than "unknown … did you mean" about a name that does exist."""
    if group not in ("loss", "miner"):
        return None
    from lossforge.registry import LOSSES, MINERS, RegistryError

    registry = LOSSES if group == "loss" else MINERS
    if option not in registry.conflicts():
        return None
    try:
        registry.info(option)
    except RegistryError as error:
        return str(error)
    return None


_HYDRA_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "joblib launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit launcher"),
}
"""Hydra's plugin options → the module that provides each, its pip package, and what it is."""


_PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper", "hparams_search", "experiment")
"""Groups whose options are, or whose YAML files pull in, one of `_HYDRA_PLUGINS`."""


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
    """Whether `module` is installed, found without importing it (nor torch, through it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing too
        return False


def _hydra_plugins_of(group: str, option: str) -> list[str]:
    """The Hydra plugin options that `group=option` selects: the option itself (`hydra/launcher=joblib`),
    or those its lossforge YAML file extends or overrides (`parallel.yaml`: `defaults: [joblib]`)."""
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
    """The defaults list of lossforge's own `conf/<group>/<option>.yaml` (empty if it has none, or the
    option comes from a plugin)."""
    from importlib import resources

    import yaml

    path = resources.files("lossforge.conf").joinpath(*group.split("/"), f"{option}.yaml")
    if not path.is_file():
        return []
    node = yaml.safe_load(path.read_text())
    defaults = node.get("defaults") if isinstance(node, dict) else None
    return defaults if isinstance(defaults, list) else []


_CHOOSING_GROUPS = ("experiment", "hparams_search", "metric_setup")
"""Groups whose YAML files may choose the loss or miner: with one on the command line, which component a
`loss.<param>` belongs to is known only after Hydra composes the config."""


_DEFAULT_COMPONENT = {"loss": "cross_entropy", "miner": None}  # conf/config.yaml's defaults


_PLURAL = {"loss": "losses", "miner": "miners"}


def _unknown_parameter(arguments: list[str]) -> str | None:
    """`loss.gama=2` → "loss 'focal' has no parameter 'gama'. Did you mean 'gamma'?", checked against the
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
    """`" (these take 'gamma': focal)"` — the components that have `parameter` — or `""`."""
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
    """Why `<kind>.<parameter>` fits not every one of `names`, or `None`. A component that fails to load,
    takes `**kwargs`, or is a plugin's YAML option is left to the registry, which reports it when building."""
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
