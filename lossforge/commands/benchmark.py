"""`lossforge benchmark`: the fair comparison protocol from the command line — the arguments parsed here, the
comparison run by [lossforge.api.benchmark][], its result printed by [lossforge.protocol.report][]."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lossforge.commands._common import USER_ERRORS, quiet_lightning, user_error
from lossforge.contract import did_you_mean


def main(arguments: list[str] | None = None) -> int:
    """`lossforge benchmark [OVERRIDE …] [options]`: the fair comparison protocol ([lossforge.protocol][])
    — every loss tuned with the same budget on validation, its best configuration retrained with K seeds and
    tested once, and a verdict per loss against a baseline. Exit status 1 if an entry failed."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="lossforge benchmark",
        description=(
            "Compare losses fairly: the same number of tuning trials for each (validation only), the best "
            "configuration of each retrained with K seeds and tested once, and a statistical verdict against a "
            "baseline. Re-running the same command resumes it."
        ),
        epilog="Example: lossforge benchmark dataset=digits_imbalanced --losses cross_entropy,focal --budget small",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the base experiment (dataset=…, model=…)")
    parser.add_argument("--losses", help="comma-separated losses (or loss+miner); default: every loss of the task")
    parser.add_argument("--budget", default="default", help="tiny | small | default (trials × seeds)")
    parser.add_argument("--trials", type=int, help="tuning trials per loss (overrides the budget's)")
    parser.add_argument("--seeds", type=int, help="final seeds per loss (overrides the budget's)")
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs for every run (overrides the budget's)")
    parser.add_argument("--baseline", help="the loss every other is judged against (default: cross_entropy)")
    parser.add_argument("--name", help="the comparison's name; the same name resumes it (default: derived)")
    parser.add_argument("--no-pruner", action="store_true", help="run every trial to its last epoch")
    parser.add_argument("--seed", type=int, default=0, help="the tuning sampler's seed")
    parser.add_argument(
        "--class-folds", type=int, default=0, help="metric learning: tune with k folds over class partitions"
    )
    parser.add_argument(
        "--storage",
        help="the studies' Optuna storage: a path (.db: SQLite; .log or journal:PATH: Optuna's journal file), "
        "or a database URL such as postgresql://… (default: outputs/tuning.db)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="processes (or SLURM jobs) that share the comparison; default: one per usable core. The result is "
        "the same whatever the number (locally)",
    )
    parser.add_argument(
        "--launcher",
        default="local",
        choices=("local", "slurm"),
        help="local: worker processes on this machine; slurm: SLURM jobs (with a --storage every node reaches)",
    )
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: usable cores ÷ workers)")
    parser.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a SLURM job parameter for --launcher slurm, as submitit names them: partition=gpu, timeout_min=120, "
        "cpus_per_task=4, mem_gb=16, … (repeatable)",
    )
    options = parser.parse_args(arguments or [])

    from lossforge.api import benchmark
    from lossforge.protocol.launch import WorkLeft
    from lossforge.protocol.plan import BUDGETS
    from lossforge.protocol.report import print_comparison

    if options.budget not in BUDGETS:
        parser.error(
            f"unknown budget {options.budget!r}.{did_you_mean(options.budget, BUDGETS)} Available: {', '.join(BUDGETS)}"
        )
    slurm = {}
    for item in options.slurm:
        key, equals, value = item.partition("=")
        if not equals or not key:
            parser.error(f"--slurm expects KEY=VALUE (e.g. partition=gpu), got {item!r}")
        slurm[key] = int(value) if value.isdigit() else value
    try:
        quiet_lightning()
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("lossforge.protocol").setLevel(logging.INFO)  # its progress, not every run's build log
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        comparison = benchmark(
            [text for text in options.losses.split(",")] if options.losses else (),
            options.overrides,
            budget=options.budget,
            trials=options.trials,
            seeds=options.seeds,
            epochs=options.epochs,
            baseline=options.baseline,
            name=options.name,
            pruner=not options.no_pruner,
            seed=options.seed,
            class_folds=options.class_folds,
            storage=options.storage,
            workers=options.workers,
            launcher=options.launcher,
            threads=options.threads,
            slurm=slurm,
            progress_bar=sys.stderr.isatty(),
            base_dir=Path.cwd(),
        )
    except (*USER_ERRORS, WorkLeft) as error:
        return user_error(error)
    print_comparison(comparison)
    return 1 if any(outcome.error for outcome in comparison.outcomes) else 0
