"""Entry-point registry for losses, miners, datasets and models: discovered without importing, loaded on
first use.

Every loss, miner, dataset and model — lossforge's own built-ins included — is an entry point in the group
`lossforge.losses`, `lossforge.miners`, `lossforge.datasets` or `lossforge.models`. A loss, miner or
model is an `nn.Module` class; a dataset is a callable (a function `(*, seed, **params)`). Discovery only
reads installed packages' metadata, so listing names costs milliseconds and imports neither torch nor any
plugin. A plugin is imported the first time it is used; an import that fails is recorded with its package and
error and never breaks the others. Two packages that register one name are reported, naming both: the bare
name is then refused (never resolved by install order) and `"<package>:<name>"` picks one.

The environment switches `LOSSFORGE_DISABLE_PLUGINS` and `LOSSFORGE_BLOCK_PLUGINS` (see
[lossforge.contract.Switches][]) are read each time the index is built. What a component must declare
is [lossforge.contract][]'s business; the registry only asks it.

**Providers: one entry point, many components.** An adapter that exposes a whole library (every loss of
pytorch-metric-learning, of kornia, of timm) cannot list one entry point per component: the components
are generated from the library's classes. It declares one entry point in the group `lossforge.providers`
([lossforge.contract.PROVIDER_GROUP][]) whose value is `"module:function"`. The function takes no
argument and returns plain data — what entry points would have declared:

    {"lossforge.losses": {"pml_arcface_loss": "lossforge_pml.generated:pml_arcface_loss", ...},
     "lossforge.miners": {...},
     "unavailable": {"pml_smooth_ap_loss": "needs pytorch-metric-learning >= 2.9 (installed: 2.5.0)"}}

Each `"module:attribute"` target is loaded exactly like an entry point's, on first use (a module-level
`__getattr__`, PEP 562, can generate the class then). `"unavailable"` (optional) names components the
provider knows but cannot offer here, with the reason; asking for one raises a
[RegistryError][lossforge.registry.RegistryError] that gives it. Learning the names means importing the provider's
module and calling the function when the index is built (once per process, again after
[Registry.refresh][lossforge.registry.Registry.refresh]), so **the provider's module must import nothing heavy** — no
torch, not the adapted library: it declares its names from a static table or a data file in its package, and reads
installed versions from package metadata (`importlib.metadata.version`). `lossforge list --names` then stays as cheap
with a provider as without; the descriptions of the provided components are cached by [lossforge.catalog][] like any
other's, keyed on the provider's distribution and the versions of the distributions it requires. A provider's components
carry its distribution as their provenance, obey the same conflict rules as entry points (a name two packages provide is
refused, `"<package>:<name>"` picks one), and the switches apply to the provider's distribution (a blocked provider
is not even imported). A provider that fails — its import raises, the function raises or returns something
else — is recorded with its package and error
([Registry.provider_failures][lossforge.registry.Registry.provider_failures], shown by `lossforge list`) and never
breaks discovery of the others.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from lossforge.contract import (
    DATASET_GROUP,
    GROUPS,
    LOSS_GROUP,
    MINER_GROUP,
    MODEL_GROUP,
    MODEL_INPUTS,
    OWN_DISTRIBUTION,
    PLUGIN_HELP,
    PROVIDER_GROUP,
    ContractError,
    Switches,
    check_component_class,
    did_you_mean,
    normalize_distribution,
)


class RegistryError(LookupError):
    """An unknown, ambiguous or broken component name; the message says what is available."""


@dataclass(frozen=True)
class Parameter:
    """One keyword parameter of a component's constructor."""

    name: str
    default: Any
    annotation: Any  # the evaluated annotation, or `Any` when there is none / it cannot be evaluated


@dataclass
class Component:
    """A registered component: where it comes from, and (once loaded) the class or function itself."""

    name: str
    kind: str  # "loss" | "miner" | "dataset" | "model"
    target: str  # "module:attribute", as the entry point declares it
    distribution: str | None  # the package that provides it, e.g. "lossforge" or a plugin's name
    version: str | None
    loaded: Any = None
    error: str | None = None  # why loading failed, once it did
    via: str | None = None  # the provider entry point ("pml = lossforge_pml.provider:components"), if provided

    @property
    def provider(self) -> str:
        """`"package==version"`, for provenance tags and `lossforge list`."""
        return f"{self.distribution or '?'}=={self.version or '?'}"

    @property
    def declaration(self) -> str:
        """Where the name is declared, for error messages."""
        if self.via is not None:
            return f"provider entry point '{self.via}' in group '{PROVIDER_GROUP}', target {self.target}"
        return f"entry point '{self.name} = {self.target}' in group '{GROUPS[self.kind]}'"


@dataclass(frozen=True)
class ProviderFailure:
    """A provider whose names could not be learned: which one, from which package, and why."""

    entry_point: str  # "pml = lossforge_pml.provider:components"
    distribution: str | None
    version: str | None
    error: str

    @property
    def provider(self) -> str:
        return f"{self.distribution or '?'}=={self.version or '?'}"


@dataclass(frozen=True)
class ProviderAnswer:
    """What one provider declared: `{group: {name: target}}` and the unavailable names with reasons."""

    components: dict[str, dict[str, str]]
    unavailable: dict[str, str]


def discover(group: str) -> list[tuple[str, str, str | None, str | None]]:
    """`(name, "module:attribute", distribution, version)` for every entry point in `group`.

    Reads installed packages' metadata only: nothing is imported.
    """
    found = []
    for entry_point in metadata.entry_points(group=group):
        dist = getattr(entry_point, "dist", None)
        distribution, version = (dist.metadata["Name"], dist.version) if dist is not None else (None, None)
        found.append((entry_point.name, entry_point.value, distribution, version))
    return found


_ANSWERS: dict[tuple[str, str | None, str | None], ProviderAnswer | str] = {}
"""Provider answers of this process, by `(entry point value, distribution, version)`: each provider is
called once however many registries (losses, miners) index it; [Registry.refresh][lossforge.registry.Registry.refresh]
forgets them."""


def ask_provider(value: str, distribution: str | None, version: str | None) -> ProviderAnswer:
    """Call the provider `"module:function"` (once per process) and validate its answer; `ValueError`
    naming what is wrong, or whatever the provider raised."""
    key = (value, distribution, version)
    if key not in _ANSWERS:
        try:
            _ANSWERS[key] = _parse_answer(metadata.EntryPoint("provider", value, PROVIDER_GROUP).load()())
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # a provider's failure (even sys.exit) must not break discovery of the others
            _ANSWERS[key] = describe_failure(error, distribution)
    answer = _ANSWERS[key]
    if isinstance(answer, str):
        raise ValueError(answer)
    return answer


def describe_failure(error: BaseException, distribution: str | None) -> str:
    """What went wrong when a plugin was imported or asked, and how to run without it.

    `sys.exit()` and other `BaseException` subclasses are isolated like `Exception` (pip isolates a broken
    package the same way): one plugin must not take down `lossforge list` or a run that never uses it.
    Only `KeyboardInterrupt` passes — the user asked to stop.

    ```pycon
    >>> print(describe_failure(SystemExit(3), "evil-plugin"))  # doctest: +NORMALIZE_WHITESPACE
    SystemExit: the plugin called sys.exit(3) while lossforge loaded it.
    To run without it: LOSSFORGE_BLOCK_PLUGINS=evil-plugin
    >>> describe_failure(ImportError("no module named x"), "lossforge")
    'ImportError: no module named x'

    ```
    """
    if isinstance(error, SystemExit):
        what = f"SystemExit: the plugin called sys.exit({error.code!r}) while lossforge loaded it"
    elif not isinstance(error, Exception):
        what = f"{type(error).__name__} (a BaseException) raised while lossforge loaded the plugin: {error}"
    else:
        what = f"{type(error).__name__}: {error}"
    if distribution is None or normalize_distribution(distribution) == OWN_DISTRIBUTION:
        return what
    return f"{what}. To run without it: LOSSFORGE_BLOCK_PLUGINS={distribution}"


def _parse_answer(answer: Any) -> ProviderAnswer:
    expected = f"{{'{LOSS_GROUP}': {{name: 'module:attribute'}}, '{MINER_GROUP}': {{...}}, 'unavailable': {{...}}}}"
    if not isinstance(answer, Mapping):
        raise ValueError(f"a provider must return {expected}, got {type(answer).__name__}")
    groups = (LOSS_GROUP, MINER_GROUP, DATASET_GROUP, MODEL_GROUP)
    unknown = [key for key in answer if key not in (*groups, "unavailable")]
    if unknown:
        raise ValueError(f"a provider returned unknown keys {unknown}; expected {expected}")
    components: dict[str, dict[str, str]] = {}
    for group in groups:
        declared = answer.get(group, {})
        if not isinstance(declared, Mapping) or not all(
            isinstance(name, str) and isinstance(target, str) and ":" in target for name, target in declared.items()
        ):
            raise ValueError(f"a provider's {group!r} must map names to 'module:attribute' strings, got {declared!r}")
        components[group] = dict(declared)
    unavailable = answer.get("unavailable", {})
    if not isinstance(unavailable, Mapping) or not all(isinstance(v, str) for v in unavailable.values()):
        raise ValueError(f"a provider's 'unavailable' must map names to reasons (strings), got {unavailable!r}")
    return ProviderAnswer(components, {str(name): reason for name, reason in unavailable.items()})


@dataclass
class Registry:
    """The components of one kind (`"loss"`, `"miner"`, `"dataset"`, `"model"`), indexed from one
    entry-point group."""

    kind: str
    group: str
    _components: dict[str, Component] | None = None
    _conflicts: dict[str, list[Component]] = field(default_factory=dict)
    _unavailable: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (provider, reason)
    _provider_failures: list[ProviderFailure] = field(default_factory=list)

    # -- discovery ---------------------------------------------------------------------------------
    def _index(self) -> dict[str, Component]:
        if self._components is not None:
            return self._components
        switches = Switches.read()
        by_name: dict[str, list[Component]] = {}
        for name, target, distribution, version in discover(self.group):
            if not switches.admits(distribution):
                continue
            by_name.setdefault(name, []).append(Component(name, self.kind, target, distribution, version))
        self._unavailable, self._provider_failures = {}, []
        for label, value, distribution, version in discover(PROVIDER_GROUP):
            if not switches.admits(distribution):
                continue  # a blocked provider is not even imported
            via = f"{label} = {value}"
            try:
                answer = ask_provider(value, distribution, version)
            except Exception as error:
                self._provider_failures.append(ProviderFailure(via, distribution, version, str(error)))
                continue
            for name, target in answer.components[self.group].items():
                component = Component(name, self.kind, target, distribution, version, via=via)
                by_name.setdefault(name, []).append(component)
            provided = f"{distribution or '?'}=={version or '?'}"
            for name, reason in answer.unavailable.items():
                self._unavailable[name] = (provided, reason)
        self._components, self._conflicts = {}, {}
        for name, candidates in by_name.items():
            if len(candidates) == 1:
                self._components[name] = candidates[0]
                continue
            self._conflicts[name] = candidates
            for candidate in candidates:  # each stays reachable by its qualified name
                self._components[f"{candidate.distribution}:{name}"] = candidate
        return self._components

    def refresh(self) -> None:
        """Forget the index (after installing a plugin in-process, or changing the environment switches)."""
        self._components, self._conflicts = None, {}
        _ANSWERS.clear()

    def register(self, name: str, obj: Any, *, distribution: str = "__local__", version: str = "") -> None:
        """Register `obj` under `name` in this process only (tests, notebooks). Entry points are the
        way to ship a component; this never overrides one."""
        components = self._index()
        if name in components or name in self._conflicts:
            raise RegistryError(f"{self.kind} {name!r} is already registered by {components[name].provider}")
        self._check(name, obj, distribution)
        target = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
        components[name] = Component(name, self.kind, target, distribution, version, loaded=obj)

    # -- queries -----------------------------------------------------------------------------------
    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the fnmatch `pattern`; an ambiguous name is listed qualified."""
        return sorted(name for name in self._index() if fnmatch.fnmatchcase(name, pattern))

    def provider_failures(self) -> list[ProviderFailure]:
        """The providers whose names could not be learned (their components are missing from the index)."""
        self._index()
        return list(self._provider_failures)

    def conflicts(self) -> dict[str, list[str]]:
        """Names registered by more than one package → those packages."""
        self._index()
        return {name: [c.provider for c in cands] for name, cands in self._conflicts.items()}

    def info(self, name: str) -> Component:
        """The component registered as `name` (not loaded); raises `RegistryError` if there is none."""
        components = self._index()
        if name in components:
            return components[name]
        if name in self._conflicts:
            options = ", ".join(
                f"'{c.distribution}:{name}' ({c.provider}, entry point {c.target})" for c in self._conflicts[name]
            )
            raise RegistryError(
                f"{self.kind} {name!r} is registered by more than one package, and lossforge will not pick "
                f"one by install order. Use a qualified name: {options}, or uninstall one of them."
            )
        if name in self._unavailable:
            provider, reason = self._unavailable[name]
            raise RegistryError(f"{self.kind} {name!r} is declared by {provider} but is not available here: {reason}")
        available = self.names()
        hint = did_you_mean(name, available)
        plural = "losses" if self.kind == "loss" else f"{self.kind}s"
        if self.kind in ("dataset", "model"):
            plural += f" (and the {self.kind} options in a --config-dir)"
        raise RegistryError(
            f"Unknown {self.kind} {name!r}.{hint} Available {plural}: {', '.join(available) or 'none'}. {PLUGIN_HELP}"
        )

    def load(self, name: str) -> Any:
        """Import and validate the component (once); a failure is recorded and re-raised clearly."""
        component = self.info(name)
        if component.loaded is not None:
            return component.loaded
        if component.error is None:
            try:
                obj = metadata.EntryPoint(name, component.target, self.group).load()
                self._check(name, obj, component.distribution)
                component.loaded = obj
                return obj
            except KeyboardInterrupt:  # the user's Ctrl-C stops the command, whatever was being imported
                raise
            except BaseException as error:  # a plugin's failure (even sys.exit) must not break the others
                component.error = describe_failure(error, component.distribution)
        raise RegistryError(
            f"{self.kind} {name!r} from package {component.provider} ({component.declaration}) failed to load: "
            f"{component.error}"
        )

    def load_all(self) -> dict[str, str]:
        """Load every component; return `{name: error}` for those that failed (the rest keep working)."""
        failures = {}
        for name in self.names():
            try:
                self.load(name)
            except RegistryError:
                failures[name] = self.info(name).error or "failed to load"
        return failures

    def parameters(self, name: str) -> dict[str, Parameter]:
        """The keyword parameters a config may set for `name`, with their defaults and annotations: a loss's,
        miner's or model's constructor parameters, a dataset function's parameters — without those lossforge
        fills in itself (a dataset's `seed`, a model's `input_shape` and `output_dim`)."""
        hidden = {"dataset": ("seed",), "model": MODEL_INPUTS}.get(self.kind, ())
        return {key: value for key, value in constructor_parameters(self.load(name)).items() if key not in hidden}

    def build(self, name: str, **params: Any) -> Any:
        """Instantiate `name` with `params` (a dataset: call it); unknown parameter names fail with the
        accepted ones."""
        cls = self.load(name)
        accepted = constructor_parameters(cls)
        unknown = [key for key in params if key not in accepted]
        if unknown and not _takes_var_keyword(cls):
            key = unknown[0]
            raise RegistryError(
                f"{self.kind} {name!r} has no parameter {key!r}.{did_you_mean(key, accepted, n=1)} Its parameters: "
                f"{', '.join(accepted) or 'none'}."
            )
        try:
            return cls(**params)
        except TypeError as error:
            raise RegistryError(f"{self.kind} {name!r} could not be built with {params}: {error}") from error

    # -- validation --------------------------------------------------------------------------------
    def _check(self, name: str, obj: Any, distribution: str | None) -> None:
        try:
            check_component_class(self.kind, obj)
        except ContractError as error:
            raise ContractError(f"{self.kind} {name!r} from package {distribution or '?'}", error.rule) from None


def _signature_target(obj: Any) -> Any:
    """What describes `obj`'s keyword parameters: a class's `__init__`, else the callable itself."""
    return obj.__init__ if inspect.isclass(obj) else obj


def _takes_var_keyword(cls: Any) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(_signature_target(cls)).parameters.values())


def constructor_parameters(cls: Any) -> dict[str, Parameter]:
    """Keyword parameters of `cls.__init__` — or of `cls` itself when it is a function (a dataset) —
    with `self`, `*args` and `**kwargs` left out."""
    target = _signature_target(cls)
    try:
        hints = inspect.get_annotations(target, eval_str=True)
    except Exception:  # an annotation that cannot be evaluated is treated as untyped
        hints = {}
    parameters = list(inspect.signature(target).parameters.values())
    result = {}
    for parameter in parameters[1:] if inspect.isclass(cls) else parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = None if parameter.default is parameter.empty else parameter.default
        result[parameter.name] = Parameter(parameter.name, default, hints.get(parameter.name, Any))
    return result


LOSSES = Registry("loss", LOSS_GROUP)
MINERS = Registry("miner", MINER_GROUP)
DATASETS = Registry("dataset", DATASET_GROUP)
MODELS = Registry("model", MODEL_GROUP)
REGISTRIES: dict[str, Registry] = {"loss": LOSSES, "miner": MINERS, "dataset": DATASETS, "model": MODELS}
"""Every registry, by component kind."""
