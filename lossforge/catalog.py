"""The catalog: what `lossforge list` shows of every loss and miner, cached so listing needs no torch.

Describing a component (its served tasks, constructor parameters and search space) means importing it,
and with it torch: seconds. The descriptions are kept in the user's cache directory
(`$XDG_CACHE_HOME/lossforge`, else `~/.cache/lossforge`) under a key made of every component's entry
point, the distribution and version that provides it, the versions of the distributions *it* requires (a
provider generates its components from another library — pytorch-metric-learning for `lossforge-pml` —
so upgrading that library changes what is described), the environment switches, and the newest
modification time of the `.py` files of each providing package (so an edit to an editable install counts
as a change). Any change to a plugin — installed, removed, upgraded, edited — changes the key; a missing,
stale or unreadable cache is rebuilt without a word. A provider whose names could not be learned
([lossforge.registry.Registry.provider_failures][]) is listed as a failed entry, never cached.

```pycon
>>> summary = ComponentSummary("loss", "l1", "lossforge==0.1.0", "regression", ["reduction='mean'"], "nothing")
>>> ComponentSummary(**summary.__dict__) == summary
True

```
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lossforge.contract import Switches
from lossforge.registry import LOSSES, MINERS, ProviderFailure, Registry

CACHE_VERSION = 1  # bump when ComponentSummary changes


@dataclass(frozen=True)
class ComponentSummary:
    """One line of `lossforge list`: a component as a person reads it."""

    kind: str  # "loss" | "miner"
    name: str
    provider: str  # "package==version"
    served: str  # "binary/multiclass" for a loss, "pairs" / "triplets" for a miner
    parameters: list[str] = field(default_factory=list)  # "name=default" each
    tune: str = ""  # the search space, described
    error: str | None = None  # why it failed to load, when it did


def describe(registry: Registry, name: str) -> ComponentSummary:
    """Load `name` and describe it (or record why it failed to load)."""
    from lossforge.contract import describe_search_space, loss_traits, miner_traits

    info = registry.info(name)
    try:
        component = registry.load(name)
        parameters = registry.parameters(name)
    except Exception as error:
        return ComponentSummary(registry.kind, name, info.provider, "", error=str(error))
    if registry.kind == "loss":
        served = "/".join(loss_traits(component).tasks)
    else:
        served = f"{miner_traits(component).tuple_kind}s"
    values = [f"{parameter.name}={parameter.default!r}" for parameter in parameters.values()]
    return ComponentSummary(registry.kind, name, info.provider, served, values, describe_search_space(component))


def summaries(registry: Registry, *, cache_dir: Path | None = None) -> list[ComponentSummary]:
    """Every component of `registry`, described — from the cache when nothing it depends on changed."""
    directory = cache_dir or default_cache_dir()
    path = directory / ("losses.json" if registry.kind == "loss" else "miners.json")
    key = cache_key(registry)
    try:
        cached = json.loads(path.read_text())
        if cached["key"] == key:
            return [ComponentSummary(**entry) for entry in cached["components"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, corrupt or from another version: rebuilt below
    described = [describe(registry, name) for name in registry.names()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"key": key, "components": [asdict(entry) for entry in described]}))
        temporary.replace(path)  # atomic: a concurrent `lossforge list` reads the old or the new file
    except OSError:
        pass  # a read-only home: list without caching
    return described


def failed_provider(kind: str, failure: ProviderFailure) -> ComponentSummary:
    """A provider whose names could not be learned, as a failed line of `lossforge list`."""
    return ComponentSummary(
        kind,
        f"<provider {failure.entry_point.split(' = ')[0]}>",
        failure.provider,
        "",
        error=f"provider entry point '{failure.entry_point}' failed: {failure.error}",
    )


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/lossforge`, else `~/.cache/lossforge`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lossforge"


def cache_key(registry: Registry) -> str:
    """A digest of everything a description depends on, computed without importing any component."""
    parts: list[Any] = [CACHE_VERSION, sys.version_info[:2], registry.kind, sorted(Switches.read().blocked_plugins)]
    parts.append(Switches.read().disable_plugins)
    packages, distributions = set(), set()
    for name in registry.names():
        component = registry.info(name)
        parts.append([name, component.target, component.distribution, component.version, component.via])
        packages.add(component.target.split(":")[0].split(".")[0])
        distributions.add(component.distribution)
    parts += [[package, _newest_source(package)] for package in sorted(packages)]
    parts += [[dist, _requirement_versions(dist)] for dist in sorted(d for d in distributions if d)]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _requirement_versions(distribution: str) -> list[tuple[str, str | None]]:
    """`(requirement, installed version)` for each runtime requirement of `distribution`, from metadata."""
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    versions: list[tuple[str, str | None]] = []
    for requirement in requirements:
        if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
            continue  # an optional extra (tests, docs) does not change what the components are
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if match is None:
            continue
        try:
            versions.append((match.group(0), metadata.version(match.group(0))))
        except metadata.PackageNotFoundError:
            versions.append((match.group(0), None))
    return versions


def _newest_source(package: str) -> float:
    """The newest modification time of the package's `.py` files, found without importing it."""
    spec = None
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(package, None)
        except Exception:  # a finder that cannot answer for this name
            continue
        if spec is not None:
            break
    if spec is None:
        spec = importlib.util.find_spec(package) if package in sys.modules else None
    if spec is None:
        return 0.0
    if not spec.submodule_search_locations:  # a single-file module
        return os.stat(spec.origin).st_mtime if spec.origin and os.path.isfile(spec.origin) else 0.0
    newest = 0.0
    for root in spec.submodule_search_locations:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = [sub for sub in subfolders if not sub.startswith((".", "__pycache__"))]
            for file in files:
                if file.endswith(".py"):
                    newest = max(newest, os.stat(os.path.join(folder, file)).st_mtime)
    return newest


def all_summaries(*, cache_dir: Path | None = None) -> list[ComponentSummary]:
    """The losses, then the miners; a provider that failed is listed once, among the losses."""
    failed = [failed_provider("loss", failure) for failure in LOSSES.provider_failures()]
    return [*summaries(LOSSES, cache_dir=cache_dir), *failed, *summaries(MINERS, cache_dir=cache_dir)]


def describe_data_component(kind: str, name: str) -> ComponentSummary:
    """A dataset or model as `lossforge list --kind dataset|model` shows it: what it serves (a dataset's
    declared task; a model's `input_shape → output_dim`) and its parameters — lossforge's reserved keys are
    listed once below the table, not per component."""
    from lossforge.registry import REGISTRIES

    registry = REGISTRIES[kind]
    info = registry.info(name)
    try:
        component = registry.load(name)
        parameters = registry.parameters(name)
    except Exception as error:
        return ComponentSummary(kind, name, info.provider, "", error=str(error))
    served = str(getattr(component, "task", "") or "its own task") if kind == "dataset" else "input_shape → output_dim"
    values = [f"{parameter.name}={parameter.default!r}" for parameter in parameters.values()]
    return ComponentSummary(kind, name, info.provider, served, values)


def list_data_components(kind: str, *, names_only: bool = False) -> int:
    """Print every registered dataset or model with its parameters; exit status 1 if one failed to load."""
    from lossforge.contract import RESERVED_DATASET_KEYS, RESERVED_MODEL_KEYS
    from lossforge.registry import REGISTRIES

    registry = REGISTRIES[kind]
    if names_only:
        print(",".join(registry.names()))
        return 0
    described = [describe_data_component(kind, name) for name in registry.names()]
    width = max((len(entry.name) for entry in described), default=0)
    print(f"{'Datasets' if kind == 'dataset' else 'Models'}:")
    for entry in described:
        if entry.error is not None:
            print(f"  {entry.name:<{width}} FAILED  {entry.provider}\n      {entry.error}")
            continue
        print(f"  {entry.name:<{width}} {entry.served:<24} {entry.provider}")
        if entry.parameters:
            print("      " + ", ".join(entry.parameters))
    for name, providers in registry.conflicts().items():
        print(f"  {name!r} is registered by several packages: {', '.join(providers)}")
    reserved = RESERVED_DATASET_KEYS if kind == "dataset" else RESERVED_MODEL_KEYS
    print(f"\nlossforge's own keys beside them: {', '.join(f'{kind}.{key}' for key in reserved)} (docs/your-data.md)")
    return 1 if any(entry.error is not None for entry in described) else 0
