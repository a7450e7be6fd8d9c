"""One module per command of the `lossforge` script, each with `main(arguments) -> exit status`: it parses
its arguments, calls the library ([lossforge.api][], the protocol, the evaluation) and renders what it
returns. `app` is the Hydra app (`lossforge [overrides]`). [lossforge.cli][] dispatches to them.

The top layer: nothing in lossforge imports a command.
"""
