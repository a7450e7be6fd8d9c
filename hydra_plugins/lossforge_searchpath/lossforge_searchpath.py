"""Add the Hydra config folders that lossforge plugins ship to Hydra's search path.

A plugin names a Python package that holds its config folder in the entry-point group
`lossforge.configs`:

    [project.entry-points."lossforge.configs"]
    lossforge_extras = "lossforge_extras.conf"

and its YAML files then compose like lossforge's own: `loss=<preset>`, `experiment=<name>`. Only
lossforge's app is touched (a search path whose primary config is `pkg://lossforge.conf`); other Hydra
apps in the same environment are left alone.

Order, first match wins: Hydra's own configs, lossforge's `conf/` (so a plugin cannot replace one of
lossforge's files), then the plugins' folders sorted by package name, then `structured://` — the
ConfigStore nodes lossforge generates for every loss and miner. A plugin YAML named like a registered
component (`loss/<name>.yaml`) is therefore found first; Hydra 1.3 then merges it onto the generated node
of the same name ("automatic schema matching", deprecated since Hydra 1.1 and announced with a warning),
so its values become the defaults and overrides stay type-checked. Presets under their own name that
extend the generated node through their defaults list avoid that deprecated path (see plugins/README.md).

The environment switches of the registry apply here too: `LOSSFORGE_DISABLE_PLUGINS=1` adds no folder,
`LOSSFORGE_BLOCK_PLUGINS=pkg_a,pkg_b` leaves those packages' folders out.
"""

from __future__ import annotations

import importlib
import warnings
from importlib import resources

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from lossforge.contract import Switches
from lossforge.registry import describe_failure, discover

CONFIG_GROUP = "lossforge.configs"
LOSSFORGE_CONFIG = "pkg://lossforge.conf"


def plugin_config_packages() -> list[tuple[str, str]]:
    """`(distribution, config package)` for every `lossforge.configs` entry point that is enabled and
    importable, sorted by distribution, so two plugins' folders never swap places between installs.

    A package that is not importable is skipped with a warning naming the distribution and the entry point:
    Hydra imports these packages while composing, and would otherwise fail on it for every config.
    """
    found = []
    switches = Switches.read()
    for name, value, found_distribution, _ in discover(CONFIG_GROUP):
        distribution = found_distribution or "?"
        if not switches.admits(found_distribution):
            continue
        where = f"package {distribution} (entry point '{name} = {value}' in '{CONFIG_GROUP}')"
        if ":" in value:
            warnings.warn(f"{where}: expected a package name, not 'module:attribute'; skipped", stacklevel=2)
            continue
        try:
            importlib.import_module(value)  # a config package holds YAML files only: cheap
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # sys.exit() in a plugin's package is isolated too (lossforge.registry)
            reason = describe_failure(error, found_distribution)
            warnings.warn(f"{where}: config package not importable, skipped: {reason}", stacklevel=2)
            continue
        found.append((distribution, value))
    return sorted(found)


def plugin_config_options(group: str) -> list[str]:
    """The options plugins add to a config group: the names of the `<group>/*.yaml` files in their folders.

    For checks that run before Hydra (`lossforge.overrides.check_overrides`), which otherwise know only
    lossforge's own files and the registry's names.
    """
    options: set[str] = set()
    for _, package in plugin_config_packages():
        folder = resources.files(package) / group
        if folder.is_dir():
            options.update(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return sorted(options)


class LossforgeSearchPathPlugin(SearchPathPlugin):
    """Append `pkg://<config package>` for each plugin's `lossforge.configs` entry point."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(element.path == LOSSFORGE_CONFIG for element in search_path.get_path()):
            return
        for distribution, package in plugin_config_packages():
            search_path.append(provider=distribution, path=f"pkg://{package}")
