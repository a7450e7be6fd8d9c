"""`lossforge list`: every registered loss and miner (`--kind dataset|model`: datasets, models), with its
task, parameters and package."""

from __future__ import annotations


def main(arguments: list[str] | None = None) -> int:
    """`lossforge list [--task TASK] [--names]`: every registered loss and miner, or only the losses that
    declare `TASK`; `--names` prints them comma-separated, ready for a sweep. Exit status 1 if a plugin
    failed to load."""
    import argparse

    from lossforge.components import list_losses
    from lossforge.contract import TASKS
    from lossforge.registry import LOSSES, MINERS

    parser = argparse.ArgumentParser(prog="lossforge list", description="List the registered losses and miners.")
    parser.add_argument(
        "--task", choices=[str(task) for task in TASKS], help="only the losses that can train this task"
    )
    parser.add_argument("--names", action="store_true", help="print just the names, comma-separated")
    parser.add_argument(
        "--kind", choices=["loss", "miner", "dataset", "model"], help="only this kind of component (datasets, models)"
    )
    options = parser.parse_args(arguments or [])
    if options.kind in ("dataset", "model"):
        from lossforge.catalog import list_data_components

        return list_data_components(options.kind, names_only=options.names)
    if options.task or options.names:
        print(",".join(list_losses(task=options.task)))
        return 0

    from lossforge.catalog import all_summaries

    described = all_summaries()  # cached: listing imports no component while none changed
    width = max((len(entry.name) for entry in described), default=0)
    for title, kind, registry in (("Losses", "loss", LOSSES), ("Miners", "miner", MINERS)):
        print(f"{title}:")
        for entry in (entry for entry in described if entry.kind == kind):
            if entry.error is not None:
                print(f"  {entry.name:<{width}} FAILED  {entry.provider}\n      {entry.error}")
                continue
            print(f"  {entry.name:<{width}} {entry.served:<22} {entry.provider}")
            if entry.parameters:
                print("      " + ", ".join(entry.parameters))
            print(f"      tune: {entry.tune}")
        for name, providers in registry.conflicts().items():
            print(f"  {name!r} is registered by several packages: {', '.join(providers)}")
        print()
    return 1 if any(entry.error is not None for entry in described) else 0
