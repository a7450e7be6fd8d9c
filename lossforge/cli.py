"""The command line, a thin dispatcher: `lossforge <command> [arguments]` runs the command's module under
[lossforge.commands][]; anything else is the Hydra app (`lossforge [overrides]`, the same as
`python -m lossforge [overrides]`).

* `lossforge [overrides]` — one experiment, or a sweep with `-m` ([lossforge.commands.app][]).
* `lossforge list` — every loss and miner: task, parameters and defaults, the package that provides it,
  and plugins that failed to load.
* `lossforge check [DISTRIBUTION …]` — the contract kit over installed plugins: a verdict per component.
* `lossforge compare` — a sweep's runs read back from MLflow as a table and a plot (`--help`).
* `lossforge benchmark` — the fair comparison protocol: equal tuning budget, K seeds, a verdict.
* `lossforge ui` — the MLflow dashboard on the runs' store, on 127.0.0.1 and a free port.
* `lossforge plot [overrides]` — each loss and its derivative against its task's axis (`--help`).

Each command imports what it needs when it runs (torch, Lightning, MLflow only once an experiment runs), so
help and listing stay fast.
"""

from __future__ import annotations

import sys

SUBCOMMANDS = {
    "list": "lossforge.commands.list:main",
    "check": "lossforge.commands.check:main",
    "compare": "lossforge.commands.compare:main",
    "benchmark": "lossforge.commands.benchmark:main",
    "plot": "lossforge.commands.plot:main",
    "ui": "lossforge.commands.ui:main",
}
"""The subcommands: name → `"module:function"`, called with the remaining arguments, returning the exit
status. Imported only when used, so each command pays for its own imports alone."""


def main() -> None:
    """Console script entry: a subcommand ([SUBCOMMANDS][lossforge.cli.SUBCOMMANDS]) or the Hydra app."""
    import atexit
    import gc
    import importlib

    # Last of all at exit: put every object out of the garbage collector's reach. The interpreter's final
    # collections would otherwise walk everything torch, Lightning and MLflow allocated — 1.2–1.6 s of
    # every command's exit on this machine, for memory the OS takes back anyway. atexit handlers, flushes
    # and closing files still run as before; only cyclic garbage is left uncollected.
    atexit.register(gc.freeze)

    arguments = sys.argv[1:]
    if arguments[:1] and arguments[0] in SUBCOMMANDS:
        module, function = SUBCOMMANDS[arguments[0]].split(":")
        try:
            sys.exit(getattr(importlib.import_module(module), function)(arguments[1:]))
        except ConnectionError as error:  # a store that cannot be used (lossforge.tracking.store): one paragraph
            from lossforge.contract import Switches

            if Switches.read().traceback:
                raise
            sys.exit(f"lossforge {arguments[0]}: error: {error}\n(LOSSFORGE_TRACEBACK=1 shows the traceback)")
    from lossforge.commands.app import run_app

    run_app()
