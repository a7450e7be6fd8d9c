"""lossforge from Python, without the command line: [train][lossforge.api.train] one experiment,
[benchmark][lossforge.api.benchmark] losses fairly, [compare][lossforge.api.compare] a sweep's runs — each returning an
object instead of printing. The `lossforge` commands are built on the same functions (`lossforge benchmark` and
`lossforge compare` call them).

Importing this module imports neither torch nor Lightning; each function imports what it needs when called.
`lossforge.train`, `lossforge.benchmark` and `lossforge.compare` are these functions.

Example — one experiment and its MLflow run, all under a temporary directory:

```pycon
>>> import contextlib, io, tempfile
>>> import lossforge
>>> with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
...     result = lossforge.train(["trainer.max_epochs=1", "model.hidden=[8]", "verbose=false"], base_dir=folder)
>>> result.run_id is not None, 0.0 <= result.metrics["test/accuracy"] <= 1.0
(True, True)

```
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lossforge.evaluation.compare.report import ComparisonReport
    from lossforge.evaluation.statistics.metrics import Direction
    from lossforge.protocol.runner import Comparison
    from lossforge.tracking import SweepJob

__all__ = ["TrainResult", "benchmark", "compare", "train"]


@dataclass(frozen=True)
class TrainResult:
    """What [train][lossforge.api.train] returns."""

    run_id: str | None  # the run's MLflow id (None if the store no longer answers for it)
    metrics: dict[str, float]  # test metrics, and the last epoch's validation metrics
    tracking_uri: str  # the store the run went to
    output_dir: Path  # the run's own directory: checkpoints, the resolved config
    config: Any = field(repr=False, default=None)  # the composed config the run trained (an OmegaConf DictConfig)


def train(
    overrides: Sequence[str] = (),
    *,
    config: Any = None,
    base_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    summary: bool = True,
    tags: Mapping[str, str] | None = None,
    callbacks: Sequence[Any] = (),
    sweep_job: SweepJob | None = None,
) -> TrainResult:
    """Train and test one experiment, as `lossforge [overrides]` does, and record it in MLflow.

    Args:
        overrides: Hydra overrides (`["loss=focal", "loss.gamma=2", "trainer.max_epochs=5"]`), checked
            as the command line checks them (an unknown option gets a "did you mean"). With `config`,
            dotted keys only (`trainer.max_epochs=5`), merged into it.
        config: a composed config (an OmegaConf `DictConfig` or a mapping) to train instead of composing
            one, e.g. a [TrainResult][lossforge.api.TrainResult]'s `config` with a change.
        base_dir: the directory the MLflow store is under (`<base_dir>/outputs/mlflow.db` unless the config
            or `MLFLOW_TRACKING_URI` names another); default: the current directory.
        output_dir: the run's directory; default: a new one under `<base_dir>/outputs/runs/`.
        summary: print the test metrics, the run id and the dashboard command at the end.
        tags: more MLflow tags for the run (`{"team": "vision"}`).
        callbacks: more Lightning callbacks for the training (an `EarlyStopping`, a pruning reporter).
        sweep_job: the run's place in a Hydra multirun, which makes it a child of the sweep's MLflow run
            (`lossforge.tracking.sweep_job`); the command line passes it for each job of `-m`.

    Raises:
        ValueError: an override that cannot work (unknown option, missing parameter, refused `_target_`).
    """
    from omegaconf import DictConfig, OmegaConf, open_dict

    from lossforge.training.run import train as train_run

    base = Path(base_dir or Path.cwd()).resolve()
    if config is None:
        from lossforge.hydra_options import compose
        from lossforge.overrides import check_overrides

        problem = check_overrides(list(overrides))
        if problem:
            raise ValueError(problem)
        cfg = compose(list(overrides))
    else:
        cfg = config.copy() if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    assert isinstance(cfg, DictConfig)
    with open_dict(cfg):  # how a multirun treats its jobs: not part of one run's config (as the command drops it)
        cfg.pop("sweep", None)
        cfg.pop("hydra", None)
    # A directory of its own, which also finds the run again: train() tags the run with it.
    run_dir = Path(output_dir) if output_dir else base / "outputs" / "runs" / "api" / uuid.uuid4().hex[:12]
    run_dir = run_dir.resolve()
    metrics = train_run(
        cfg, base_dir=base, output_dir=run_dir, sweep_job=sweep_job, tags=tags, summary=summary, callbacks=callbacks
    )
    run_id, tracking_uri = _run_record(run_dir, cfg, base)
    return TrainResult(run_id=run_id, metrics=dict(metrics), tracking_uri=tracking_uri, output_dir=run_dir, config=cfg)


def _run_record(output_dir: Path, cfg: Any, base_dir: Path) -> tuple[str | None, str]:
    """The MLflow run id and store the run wrote in its directory's run record (`lossforge_run.json`); for a
    `resume=` the record is in the resumed run's own directory, and only the store is known here."""
    import json

    from lossforge.run_dirs import RUN_RECORD
    from lossforge.tracking import resolve_tracking_uri

    record = output_dir / RUN_RECORD
    if record.is_file():
        written = json.loads(record.read_text())
        return written.get("run_id"), written.get("tracking_uri")
    return None, resolve_tracking_uri(cfg.logger.get("tracking_uri"), base_dir=base_dir)


def benchmark(
    losses: Sequence[str] = (),
    overrides: Sequence[str] = (),
    *,
    budget: str = "default",
    trials: int | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    baseline: str | None = None,
    name: str | None = None,
    pruner: bool = True,
    seed: int = 0,
    class_folds: int = 0,
    storage: str | None = None,
    workers: int | None = None,
    launcher: str = "local",
    threads: int | None = None,
    slurm: Mapping[str, Any] | None = None,
    progress_bar: bool = False,
    base_dir: str | Path | None = None,
) -> Comparison:
    """The fair comparison, as `lossforge benchmark` runs it: every loss tuned with the same budget on
    validation, its best configuration retrained with several seeds and tested once, and a verdict per loss
    against a baseline. Running the same comparison again resumes it.

    Args:
        losses: the entries, `"focal"` or `"triplet+semihard_triplets"`; empty: every loss of the task.
        overrides: Hydra overrides of the base experiment every entry shares (`dataset=…`, `model=…`).
        budget: `"tiny"`, `"small"` or `"default"` (trials × seeds × epochs); `trials`, `seeds`
            and `epochs` override its parts.
        baseline: the loss every other is judged against (default: `cross_entropy`, else the first).
        name: names the comparison in MLflow; the same name resumes it (default: derived).
        pruner: stop poor trials early; `seed`: the tuning sampler's seed; `class_folds`: metric
            learning, tune with k folds over class partitions.
        storage: the studies' Optuna storage: a path (`.db`: SQLite; `.log` or `journal:PATH`: Optuna's
            journal file) or a database URL (`postgresql://…`); default `outputs/tuning.db`.
        workers: processes (or SLURM jobs) sharing the comparison; `None`: one per usable core
            (`os.sched_getaffinity`). The chosen configurations and the seed runs' results do not depend on it
            with the `local` launcher.
        launcher: `local` (processes on this machine) or `slurm` (SLURM jobs through submitit; give a
            `storage` every node reaches).
        threads: torch threads per worker; `None`: the usable cores ÷ `workers` (SLURM: `cpus_per_task`).
        slurm: submitit's SLURM parameters (`partition`, `timeout_min`, `cpus_per_task`, `mem_gb`, …).
        progress_bar: a progress bar per entry (for a terminal) instead of a log line per finished trial.
        base_dir: the directory the MLflow store and the outputs are under (default: the current one).

    Returns:
        The [Comparison][lossforge.protocol.runner.Comparison]: its MLflow `run_id`, each entry's `outcomes`,
        the verdict `tables` and the `report` as `lossforge compare` prints it.

    Raises:
        ValueError, LookupError: an unknown budget, loss or option; the message says what is available.
    """
    import dataclasses

    from lossforge.contract import did_you_mean
    from lossforge.protocol.plan import BUDGETS, Entry
    from lossforge.protocol.runner import Settings, run_protocol
    from lossforge.protocol.work import usable_cores

    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}.{did_you_mean(budget, BUDGETS)} Available: {', '.join(BUDGETS)}")
    changes = {"trials": trials, "seeds": seeds, "max_epochs": epochs}
    chosen = dataclasses.replace(BUDGETS[budget], **{key: value for key, value in changes.items() if value is not None})
    settings = Settings(
        overrides=tuple(overrides),
        entries=tuple(Entry.parse(text) for text in losses),
        budget=chosen,
        baseline=baseline,
        name=name,
        pruner=pruner,
        seed=seed,
        class_folds=class_folds,
        storage=storage,
        workers=usable_cores() if workers is None else workers,
        launcher=launcher,
        threads=threads,
        slurm=tuple((slurm or {}).items()),
        progress_bar=progress_bar,
    )
    return run_protocol(settings, base_dir=Path(base_dir or Path.cwd()).resolve())


def compare(
    run_id: str | None = None,
    *,
    tracking_uri: str | None = None,
    experiment: str = "lossforge",
    metrics: Sequence[str] | None = None,
    mean_over: str | Sequence[str] | None = None,
    baseline: str | None = None,
    directions: Mapping[str, Direction] | None = None,
    log: bool = False,
    base_dir: str | Path | None = None,
) -> ComparisonReport:
    """A sweep's (or a comparison's) runs read back from MLflow with a verdict on every difference, as
    `lossforge compare` prints it: see [lossforge.evaluation.compare.sweep.compare][] for the arguments.
    It reads only; `log=True` writes the verdict onto the sweep's parent run, as `lossforge compare --log`.
    The report renders itself (`.to_text()`, `.to_markdown()`, `.to_csv()`, `.to_json()`), has its
    verdict `rows` and `tables`, and its `figure`.

    Raises:
        lossforge.evaluation.compare.verdicts.ComparisonError: the comparison cannot be made as asked.
    """
    from lossforge.evaluation.compare.sweep import compare as compare_runs

    return compare_runs(
        run_id,
        tracking_uri=tracking_uri,
        experiment=experiment,
        metrics=metrics,
        mean_over=mean_over,
        baseline=baseline,
        directions=directions,
        log=log,
        base_dir=Path(base_dir) if base_dir else None,
    )
