"""Does pruning pay? The comparison protocol's tuning with and without the median pruner, side by side.

For each setup, ``lossforge benchmark``'s tuning (:func:`lossforge.protocol.tuning.tune`) runs the same
number of trials with the same sampler seed twice — once with the median pruner, once without — in a
fresh temporary directory each (its own trial store), alternating the order over repeats. The table
reports, per setup and variant, the median wall time of the whole study, the trials pruned, the best
validation score reached, and the time ratio against the unpruned study in the same repeat. Only tuning
is timed: the K-seed retraining afterwards is the same with or without the pruner.

Usage::

    python benchmarks/protocol.py                       # imbalance (focal) and outliers (huber), 12 trials
    python benchmarks/protocol.py --trials 20 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _report import OtherLoad, add_common_arguments, machine, median, wait_for_quiet, write_tables

#: name → (Hydra overrides of the base experiment, the entry tuned)
SETUPS = {
    "imbalance": (("dataset=digits_imbalanced", "trainer.max_epochs=30"), "focal"),
    "outliers": (("dataset=regression_outliers", "trainer.max_epochs=40"), "huber"),
}


def run_study(overrides: tuple[str, ...], loss: str, trials: int, pruner: bool, seed: int) -> tuple[float, int, float]:
    """Wall seconds, pruned trials and best validation score of one study in a fresh directory."""
    from lossforge.contract import loss_traits, training_task
    from lossforge.hydra_options import compose
    from lossforge.protocol.plan import Budget
    from lossforge.protocol.tuning import prepare_storage, tune
    from lossforge.registry import LOSSES
    from lossforge.tasks import spec_for
    from lossforge.training.build import build_data
    from lossforge.training.pruning import storage_url

    cfg = compose([*overrides, f"loss={loss}"])
    data = build_data(cfg.dataset)
    task = training_task(loss_traits(LOSSES.load(loss)).tasks, data.task)
    assert task is not None
    spec = spec_for(task)
    with tempfile.TemporaryDirectory() as directory:
        storage = prepare_storage(storage_url(str(Path(directory) / "tuning.db")))
        started = time.perf_counter()
        tuned = tune(
            cfg,
            label=loss,
            budget=Budget(trials=trials, seeds=1),
            storage=storage,
            study_name="benchmark",
            monitor=f"val/{spec.selection_metric}",
            maximize=spec.higher_is_better,
            pruner=pruner,
            seed=seed,
        )
        seconds = time.perf_counter() - started
    return seconds, tuned.count("PRUNED"), float("nan") if tuned.best_value is None else tuned.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--trials", type=int, default=12, help="trials per study (the same with and without)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of studies per setup (sampler seeds 0, 1, …)")
    add_common_arguments(parser)
    args = parser.parse_args()
    quiet = wait_for_quiet(args.max_wait)
    load = OtherLoad()
    started = time.perf_counter()
    rows = []
    for setup in args.setups:
        overrides, loss = SETUPS[setup]
        results: dict[bool, list[tuple[float, int, float]]] = {True: [], False: []}
        for repeat in range(args.repeats):
            order = (True, False) if repeat % 2 == 0 else (False, True)
            for pruner in order:
                results[pruner].append(run_study(overrides, loss, args.trials, pruner, seed=repeat))
        ratios = [with_[0] / without[0] for with_, without in zip(results[True], results[False], strict=True)]
        for pruner in (False, True):
            seconds = median([result[0] for result in results[pruner]])
            pruned = median([result[1] for result in results[pruner]])
            best = [f"{result[2]:.4f}" for result in results[pruner]]
            ratio = f"{median(ratios):.2f}×" if pruner else "1.00×"
            rows.append(
                [
                    setup,
                    loss,
                    "median pruner" if pruner else "none",
                    f"{seconds:.0f}",
                    ratio,
                    f"{pruned:g}",
                    ", ".join(best),
                ]
            )
    notes = [machine(), quiet, load.note(), f"wall time {time.perf_counter() - started:.0f} s"]
    columns = [
        "setup",
        "loss",
        "pruner",
        "study s (median)",
        "time vs none",
        "trials pruned",
        "best val score per repeat",
    ]
    write_tables("protocol", [(f"{args.trials} trials per study", columns, rows)], out=args.out, notes=notes)


if __name__ == "__main__":
    main()
