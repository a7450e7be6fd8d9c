"""`lossforge check`: the contract kit over installed losses, miners, datasets and models, a verdict per
component."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lossforge.registry import Registry


def main(arguments: list[str] | None = None) -> int:
    """`lossforge check [NAME …]`: run the contract kit ([lossforge.testing][]) over the installed losses,
    miners, datasets and models — of the named packages (distributions), the named components, or all — and
    print a verdict per component and every broken promise. Exit status 1 if any component fails, 2 if a
    name is neither a package that registers components nor a registered component."""
    import argparse

    from lossforge.registry import DATASETS, LOSSES, MINERS, MODELS, RegistryError
    from lossforge.testing import (
        dataset_checks,
        dataset_names,
        loss_checks,
        loss_names,
        miner_checks,
        miner_names,
        model_checks,
        model_names,
    )

    parser = argparse.ArgumentParser(
        prog="lossforge check",
        description="Check installed losses, miners, datasets and models against lossforge's plugin contract.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="packages (distributions, e.g. lossforge-extras) or components (e.g. focal) to check; default: all",
    )
    options = parser.parse_args(arguments or [])
    wanted = options.names or [None]

    def plugin_dataset_names(distribution: str | None = None) -> list[str]:
        # lossforge's own datasets read files a checkout may lack (mnist, csv); its test suite checks them
        names = dataset_names(distribution=distribution)
        return names if distribution else [name for name in names if DATASETS.info(name).distribution != "lossforge"]

    kinds = (
        ("loss", LOSSES, loss_names, loss_checks),
        ("miner", MINERS, miner_names, miner_checks),
        ("dataset", DATASETS, plugin_dataset_names, dataset_checks),
        ("model", MODELS, model_names, model_checks),
    )
    components: list[tuple[str, str, Registry, Callable[[str], list[Any]]]] = []
    for wanted_name in wanted:
        of_package = [
            (kind, name, registry, checks)
            for kind, registry, names, checks in kinds
            for name in names(distribution=wanted_name)
        ]
        # Not a package that registers anything: a component's own name (`lossforge check focal`).
        by_name = [
            (kind, wanted_name, registry, checks)
            for kind, registry, _, checks in kinds
            if not of_package and wanted_name is not None and wanted_name in registry.names()
        ]
        if not of_package and not by_name:
            print(_unknown(str(wanted_name), [registry for _, registry, _, _ in kinds]))
            return 2
        components += of_package or by_name
    failed = 0
    for kind, name, registry, checks in components:
        try:
            broken = [(check.name, _failure(check)) for check in checks(name)]
        except (RegistryError, TypeError, ValueError) as error:
            broken = [("load", str(error))]
        broken = [(check, message) for check, message in broken if message is not None]
        failed += bool(broken)
        print(f"{'FAIL' if broken else 'ok  '}  {kind:<7} {name:<28} {registry.info(name).provider}")
        for check, message in broken:
            print(f"        {check}: {message}")
    print(f"\n{len(components) - failed} of {len(components)} components meet the contract.")
    return 1 if failed else 0


def _unknown(name: str, registries: list[Registry]) -> str:
    """The error for a name that is neither a package registering components nor a component."""
    from lossforge.contract import did_you_mean

    components = sorted({component for registry in registries for component in registry.names()})
    providers = {registry.info(component).distribution for registry in registries for component in registry.names()}
    packages = sorted(package for package in providers if package)
    return (
        f"lossforge check: {name!r} is neither a package that registers a loss, miner, dataset or model nor a "
        f"registered component.{did_you_mean(name, packages + components)} Give a package (distribution) name "
        f"— installed ones that register components: {', '.join(packages)} — or a component name "
        f"(`lossforge list` shows them)."
    )


def _failure(check: Callable[[], None]) -> str | None:
    """What a check's promise broke, or `None` if it held."""
    try:
        check()
    except AssertionError as error:
        return str(error)
    return None
