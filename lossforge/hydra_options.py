"""Every registered loss, miner, dataset and model becomes a Hydra option, with no YAML file written for it.

For each component, a structured config node `{name: <registry name>, <param>: <default>, …}` is put in
Hydra's ConfigStore under the group `loss`, `miner`, `dataset` or `model` (a dataset's node also holds
the reserved `split_seed` and `augment`; a model's the reserved `weights`, `freeze_batchnorm`,
`embedding_dim` and `normalize`). A dataset or model that lossforge ships a YAML file for keeps it (its
comments are the documentation); a plugin's dataset or model is an option the moment it is installed. Its
fields come from the constructor's keyword parameters, typed by their annotations, so `loss=focal
loss.gamma=0.5` works, `loss.gamma=abc` and `loss.gamme=1` fail while composing — before any training —
and a third-party plugin is an option the moment it is installed.

Building these nodes imports the components (and torch). Printing help or listing options only needs
the names, so `register_components(with_parameters=False)` keeps that path fast.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from hydra.core.config_store import ConfigStore

from lossforge.registry import DATASETS, LOSSES, MINERS, MODELS, Registry

_PRIMITIVES = (int, float, bool, str)
RESERVED_FIELDS: dict[str, tuple[tuple[str, Any, Any], ...]] = {
    "dataset": (("split_seed", int, 0), ("augment", Any, None), ("class_disjoint", bool, False)),
    "model": (
        ("weights", typing.Optional[str], None),  # noqa: UP045 - OmegaConf needs Optional
        ("freeze_batchnorm", bool, False),
        ("embedding_dim", int, 64),
        ("normalize", bool, True),
    ),
}
"""The reserved keys every generated dataset / model node has beside the component's own parameters:
`(name, type, default)`."""


def _field_type(annotation: Any) -> Any:
    """Map an annotation to one OmegaConf can enforce; anything it cannot (unions, literals) → `Any`."""
    if annotation in _PRIMITIVES:
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = _field_type(rest[0])
            return typing.Optional[inner] if inner is not Any else Any  # noqa: UP045 - OmegaConf needs Optional
        if set(rest) == {int, float}:
            return float
        return Any
    if origin is typing.Literal and all(isinstance(arg, str) for arg in args):
        return str
    if origin in (list, tuple, typing.Sequence) and args and args[0] in _PRIMITIVES:
        return list[args[0]]  # type: ignore[valid-type]
    return Any


def _default(value: Any) -> Any:
    if isinstance(value, list | tuple):  # dataclasses refuse mutable defaults: build a fresh list each time
        return dataclasses.field(default_factory=lambda: list(value))
    return dataclasses.field(default=value)


def component_node(registry: Registry, name: str, *, with_parameters: bool) -> Any:
    """The config node for one component: a structured dataclass, or `{name: …}` when only names are
    needed or the component fails to load (building it then reports the failure clearly)."""
    if with_parameters:
        try:
            parameters = registry.parameters(name)
        except Exception:
            parameters = None
        if parameters is not None:
            fields: list[tuple[str, Any, Any]] = [("name", str, dataclasses.field(default=name))]
            for parameter in parameters.values():
                fields.append((parameter.name, _field_type(parameter.annotation), _default(parameter.default)))
            taken = set(parameters)
            for key, annotation, default in RESERVED_FIELDS.get(registry.kind, ()):
                if key not in taken:
                    fields.append((key, annotation, _default(default)))
            safe = "".join(ch if ch.isalnum() else "_" for ch in name)
            return dataclasses.make_dataclass(f"{registry.kind}_{safe}", fields)
    return {"name": name}


def own_yaml_options(group: str) -> set[str]:
    """The options lossforge ships a YAML file for in `conf/<group>/`."""
    from importlib import resources

    folder = resources.files("lossforge.conf") / group
    if not folder.is_dir():
        return set()
    return {entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def compose(overrides: list[str] | tuple[str, ...] = (), *, config_dir: str | None = None) -> Any:
    """lossforge's config with `overrides`, composed in-process as `python -m lossforge` composes it:
    every registered component is a typed option, and plugins' config folders are on the search path.
    `config_dir` adds a folder of the user's own options, as `--config-dir` does on the command line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_components(with_parameters=True)
    GlobalHydra.instance().clear()
    extra = [f"hydra.searchpath=[file://{config_dir}]"] if config_dir else []
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[*extra, *overrides])


def register_components(*, with_parameters: bool = True) -> None:
    """Put a node for every registered component into Hydra's ConfigStore (`loss`, `miner`, and the
    datasets and models lossforge ships no YAML file for)."""
    store = ConfigStore.instance()
    for group, registry in (("loss", LOSSES), ("miner", MINERS), ("dataset", DATASETS), ("model", MODELS)):
        skip = own_yaml_options(group) if group in ("dataset", "model") else set()
        for name in registry.names():
            if name in skip:
                continue
            store.store(group=group, name=name, node=component_node(registry, name, with_parameters=with_parameters))
    _register_hydra_plugins()


def _register_hydra_plugins() -> None:
    # Hydra finds plugins by scanning the `hydra_plugins` namespace, which setuptools' editable installs
    # hide (Hydra issue 2359); registering ours by hand works in every install mode and is a no-op where
    # the scan found them. The search path plugin adds each `lossforge.configs` entry point's folder to the
    # search path. The launcher (`hydra/launcher=parallel`) sits above this layer: the Hydra app registers it.
    from hydra.core.plugins import Plugins

    from hydra_plugins.lossforge_searchpath.lossforge_searchpath import LossforgeSearchPathPlugin

    Plugins.instance().register(LossforgeSearchPathPlugin)
