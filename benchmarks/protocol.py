"""The comparison protocol's costs: does pruning pay, how much do workers gain, where does a run's time go.

``pruning`` (the default): does pruning pay? The tuning with and without the median pruner, side by side.

For each setup, ``lossforge benchmark``'s tuning (:func:`lossforge.protocol.tuning.tune`) runs the same
number of trials with the same sampler seed twice — once with the median pruner, once without — in a
fresh temporary directory each (its own trial store), alternating the order over repeats. The table
reports, per setup and variant, the median wall time of the whole study, the trials pruned, the best
validation score reached, and the time ratio against the unpruned study in the same repeat. Only tuning
is timed: the K-seed retraining afterwards is the same with or without the pruner.

``workers``: the imbalance comparison (``digits_imbalanced``: cross_entropy, weighted_cross_entropy, focal)
run by ``lossforge benchmark --workers 1`` and ``--workers 2`` as a subprocess each, in a fresh directory:
the whole command's wall time, and the tuning stage's (the first trial's start to the last trial's end, from
Optuna's records), with the speed-up of 2 workers over 1. ``--budget TRIALSxSEEDS`` (default ``20x10``, the
documented default budget) and ``--epochs`` scale it down on a busy machine.

``costs``: one tuning trial and one seed run of focal on ``digits_imbalanced``, in this process, broken down:
set-up (data and model built), training with validation, MLflow's per-epoch metric writes, the test pass,
MLflow's run records (params, config, datasets), figures and artifacts, and the rest (the MLflow run's
creation and end, checks, Lightning's set-up) — the median of ``--repeats`` after one warm-up.

Usage::

    python benchmarks/protocol.py                       # imbalance (focal) and outliers (huber), 12 trials
    python benchmarks/protocol.py --trials 20 --repeats 2
    python benchmarks/protocol.py workers --budget 4x2 --epochs 10
    python benchmarks/protocol.py costs --epochs 10 --repeats 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
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
    from lossforge.protocol.studies import prepare_storage
    from lossforge.protocol.tuning import tune
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


IMBALANCE = ("cross_entropy", "weighted_cross_entropy", "focal")


def run_command(directory: Path, workers: int, trials: int, seeds: int, epochs: int | None) -> tuple[float, float]:
    """Wall seconds of `lossforge benchmark --workers N` on the imbalance comparison in ``directory``, and of
    its tuning stage (from the studies' first trial start to their last trial end)."""
    import optuna

    command = [
        sys.executable, "-m", "lossforge", "benchmark", "dataset=digits_imbalanced", "--losses", ",".join(IMBALANCE),
        "--trials", str(trials), "--seeds", str(seeds), "--workers", str(workers), "--name", "speed",
        *(["--epochs", str(epochs)] if epochs else []),
    ]  # fmt: skip
    started = time.perf_counter()
    with (directory / "benchmark.log").open("w") as log:
        subprocess.run(command, cwd=directory, stdout=log, stderr=subprocess.STDOUT, check=True)
    whole = time.perf_counter() - started
    storage = f"sqlite:///{directory / 'outputs' / 'tuning.db'}"
    trials_ = [
        trial
        for loss in IMBALANCE
        for trial in optuna.load_study(study_name=f"speed/{loss}", storage=storage).get_trials(deepcopy=False)
    ]
    begin = min(trial.datetime_start for trial in trials_ if trial.datetime_start)
    end = max(trial.datetime_complete for trial in trials_ if trial.datetime_complete)
    return whole, (end - begin).total_seconds()


def measure_workers(args: argparse.Namespace) -> tuple[str, list[str], list[list[str]]]:
    """Both worker counts, ``--repeats`` times in alternating order (1, 2, 2, 1, …) so that a machine whose
    load drifts favours neither; the medians, and the speed-ups of the medians."""
    trials, _, seeds = args.budget.partition("x")
    results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
            with tempfile.TemporaryDirectory() as directory:
                results[workers].append(run_command(Path(directory), workers, int(trials), int(seeds), args.epochs))
    medians = {
        workers: (median([r[0] for r in runs]), median([r[1] for r in runs])) for workers, runs in results.items()
    }
    rows = [
        [
            str(workers),
            f"{whole:.0f}",
            f"{medians[1][0] / whole:.2f}×",
            f"{tuning:.0f}",
            f"{medians[1][1] / tuning:.2f}×",
            ", ".join(f"{r[0]:.0f}" for r in results[workers]),
        ]
        for workers, (whole, tuning) in medians.items()
    ]
    title = (
        f"imbalance comparison, {trials} trials × {seeds} seeds, {args.epochs or 'config'} epochs, "
        f"median of {args.repeats}"
    )
    columns = ["workers", "whole command s", "speed-up", "tuning stage s", "tuning speed-up", "whole s per repeat"]
    return title, columns, rows


#: What a run's time is broken into: the part's name → the functions (module, attribute path) it times.
PARTS = {
    "set-up (data, model)": [("lossforge.training.run", "build")],
    "MLflow per-epoch writes": [("lossforge.tracking.callback", "EpochMetricsToMlflow.on_train_epoch_end")],
    "training + validation": [("lightning.pytorch", "Trainer.fit")],
    "test pass": [("lightning.pytorch", "Trainer.test")],
    "MLflow run records": [
        ("lossforge.training.run", "log_config"),
        ("lossforge.training.run", "log_datasets"),
        ("lossforge.training.run", "write_run_record"),
    ],
    "figures and artifacts": [("lossforge.training.run", "log_run_artifacts")],
}


class Timers:
    """Wraps each part's functions to add up their wall time (nested parts: the MLflow writes happen inside
    training; the table reports training without them)."""

    def __init__(self) -> None:
        import importlib

        self.seconds = dict.fromkeys(PARTS, 0.0)
        for part, targets in PARTS.items():
            for module_name, path in targets:
                owner: object = importlib.import_module(module_name)
                *parents, attribute = path.split(".")
                for parent in parents:
                    owner = getattr(owner, parent)
                setattr(owner, attribute, self._timed(part, getattr(owner, attribute)))

    def _timed(self, part: str, function: object) -> object:
        import functools

        assert callable(function)

        @functools.wraps(function)
        def timed(*arguments: object, **keywords: object) -> object:
            started = time.perf_counter()
            try:
                return function(*arguments, **keywords)
            finally:
                self.seconds[part] += time.perf_counter() - started

        return timed

    def reset(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)


def measure_costs(args: argparse.Namespace) -> tuple[str, list[str], list[list[str]]]:
    from lossforge.hydra_options import compose
    from lossforge.protocol.plan import Budget
    from lossforge.protocol.studies import prepare_storage
    from lossforge.protocol.tuning import EntryTuning
    from lossforge.protocol.work import Job, Plan, train_seed
    from lossforge.training.pruning import storage_url

    timers = Timers()
    overrides = [
        "dataset=digits_imbalanced",
        "loss=focal",
        *([f"trainer.max_epochs={args.epochs}"] if args.epochs else []),
    ]
    samples: dict[str, list[dict[str, float]]] = {"trial": [], "seed run": []}
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        cfg = compose([*overrides, f"logger.tracking_uri=sqlite:///{base / 'mlflow.db'}"])
        storage = prepare_storage(storage_url(str(base / "tuning.db")))
        tuning = EntryTuning.open(
            cfg, label="focal", budget=Budget(99, 1), storage=storage, study_name="costs", monitor="val/f1_macro",
            maximize=True, pruner=False,
        )  # fmt: skip
        plan = Plan(
            name="costs", jobs=(), budget=Budget(1, 1), storage=storage, monitor="val/f1_macro",
            metric="test/f1_macro", maximize=True, pruner=False, seed=0, class_folds=(), experiment_id="0",
            base_dir=base,
        )  # fmt: skip
        job = Job("focal", tuple(overrides), "costs", "")
        for repeat in range(args.repeats + 1):  # the first is a warm-up (imports, the data set's first build)
            for kind in samples:
                timers.reset()
                started = time.perf_counter()
                if kind == "trial":
                    trial = tuning.study.ask()
                    tuning.study.tell(trial, tuning.objective(trial))
                else:
                    train_seed(cfg, job, repeat, plan=plan)
                total = time.perf_counter() - started
                if repeat:
                    samples[kind].append({**timers.seconds, "total": total})
    rows = []
    for part in [*PARTS, "rest (run create/end, checks, Lightning set-up)", "total"]:
        row = [part]
        for kind in samples:
            values = []
            for sample in samples[kind]:
                if part == "training + validation":
                    value = sample[part] - sample["MLflow per-epoch writes"]
                elif part.startswith("rest"):
                    value = sample["total"] - sum(sample[name] for name in PARTS if name != "MLflow per-epoch writes")
                else:
                    value = sample[part]
                values.append(value)
            row.append(f"{median(values):.2f}")
        rows.append(row)
    title = f"one run of focal on digits_imbalanced, {args.epochs or 'config'} epochs (median of {args.repeats})"
    return title, ["part", "tuning trial s", "seed run s"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="pruning", choices=("pruning", "workers", "costs"))
    parser.add_argument("--budget", default="20x10", help="workers: TRIALSxSEEDS per entry (default: 20x10)")
    parser.add_argument("--epochs", type=int, help="workers, costs: epochs per run (default: the config's)")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--trials", type=int, default=12, help="trials per study (the same with and without)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of studies per setup (sampler seeds 0, 1, …)")
    add_common_arguments(parser)
    args = parser.parse_args()
    quiet = wait_for_quiet(args.max_wait)
    load = OtherLoad()
    started = time.perf_counter()
    if args.what != "pruning":
        title, columns, rows = (measure_workers if args.what == "workers" else measure_costs)(args)
        notes = [machine(), quiet, load.note(), f"wall time {time.perf_counter() - started:.0f} s"]
        write_tables(f"protocol_{args.what}", [(title, columns, rows)], out=args.out, notes=notes)
        return
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
