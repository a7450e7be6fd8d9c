"""`lossforge check`: the contract kit over installed losses, miners, datasets and models, a verdict per
component."""

from __future__ import annotations

from collections.abc import Callable


def main(arguments: list[str] | None = None) -> int:
    """`lossforge check [DISTRIBUTION …]`: run the contract kit ([lossforge.testing][]) over the
    installed losses and miners — of the named packages, or all — and print a verdict per component and
    every broken promise. Exit status 1 if any component fails."""
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
    parser.add_argument("distributions", nargs="*", metavar="DISTRIBUTION", help="packages to check (default: all)")
    options = parser.parse_args(arguments or [])
    wanted = options.distributions or [None]

    def plugin_dataset_names(distribution: str | None = None) -> list[str]:
        # lossforge's own datasets read files a checkout may lack (mnist, csv); its test suite checks them
        names = dataset_names(distribution=distribution)
        return names if distribution else [name for name in names if DATASETS.info(name).distribution != "lossforge"]

    components = [
        (kind, name, registry, checks)
        for kind, registry, names, checks in (
            ("loss", LOSSES, loss_names, loss_checks),
            ("miner", MINERS, miner_names, miner_checks),
            ("dataset", DATASETS, plugin_dataset_names, dataset_checks),
            ("model", MODELS, model_names, model_checks),
        )
        for distribution in wanted
        for name in names(distribution=distribution)
    ]
    if not components:
        print(f"lossforge check: no loss, miner, dataset or model is registered by {', '.join(options.distributions)}.")
        return 1
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


def _failure(check: Callable[[], None]) -> str | None:
    """What a check's promise broke, or `None` if it held."""
    try:
        check()
    except AssertionError as error:
        return str(error)
    return None
