"""``python -m lossforge [overrides]``: the Hydra app (see ``lossforge.cli``)."""

from lossforge.cli import run_app

if __name__ == "__main__":
    run_app()
