"""`python -m lossforge [overrides]`: the Hydra app, and the subcommands (`list`, `check`, `compare`,
`benchmark`) as the `lossforge` script has them (see `lossforge.cli` and `lossforge.commands`)."""

from lossforge.cli import main

if __name__ == "__main__":
    main()
