"""The layers of ``docs/architecture.md``: the import-linter contracts in ``pyproject.toml`` hold, and every
module of lossforge has a place in them (a new package cannot slip past the contracts by being unnamed)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Modules no layer needs to name: the public API on top of everything, and the version every layer reads.
UNLAYERED = {"lossforge", "lossforge._version"}


def contract(name: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(entry for entry in config["contracts"] if entry["id"] == name)


def layered_names() -> set[str]:
    layers = contract("layers")["layers"]
    assert isinstance(layers, list)
    return {name.strip(" ()") for layer in layers for name in re.split(r"[|:]", layer)}


def modules(package: Path, name: str) -> dict[str, Path]:
    """Every module and package under ``package`` (a folder), by dotted name."""
    found = {name: package}
    for child in sorted(package.iterdir()):
        if child.is_dir() and (child / "__init__.py").is_file():
            found.update(modules(child, f"{name}.{child.name}"))
        elif child.suffix == ".py" and child.name != "__init__.py":
            found[f"{name}.{child.stem}"] = child
    return found


def test_the_import_contracts_hold() -> None:
    # In a child process: import-linter configures logging with disable_existing_loggers, which would silence
    # the `lossforge` logger for every test that runs after this one in the same process.
    script = (
        "from importlinter.cli import lint_imports; import sys; sys.exit(lint_imports(config_filename=sys.argv[1]))"
    )
    checked = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_module_has_a_layer() -> None:
    named = layered_names()
    everything = {**modules(ROOT / "lossforge", "lossforge")}
    for plugin in (ROOT / "hydra_plugins").iterdir():
        if (plugin / "__init__.py").is_file():
            everything.update(modules(plugin, f"hydra_plugins.{plugin.name}"))

    def covered(module: str) -> bool:
        parts = module.split(".")
        if any(".".join(parts[:end]) in named for end in range(1, len(parts) + 1)):
            return True  # named, or inside a named package
        children = [other for other in everything if other.rsplit(".", 1)[0] == module]
        return bool(children) and all(covered(child) for child in children)

    unplaced = sorted(module for module in everything if module not in UNLAYERED and not covered(module))
    assert unplaced == [], (
        f"give these a layer in pyproject.toml's [tool.importlinter] (docs/architecture.md): {unplaced}"
    )
