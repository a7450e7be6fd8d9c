"""`train(cfg)`: build, fit, test, record — one experiment, returning its metrics.

Order (one log line each): resume? → data → loss (+ task check) → miner → model (`training.build`) →
MLflow run → trainer → fit → test → artifacts → summary. Data flows one way: the config names components,
the registries build them, the LightningModule trains them, tracking records the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from lossforge import distributed
from lossforge._version import __version__
from lossforge.data.loaders import make_loader, train_sampler
from lossforge.registry import LOSSES, MINERS
from lossforge.tasks import spec_for
from lossforge.tracking import (
    RunHandle,
    SweepJob,
    check_reachable,
    dashboard_command,
    default_artifact_location,
    mlflow_run,
    redact_uri,
    resolve_tracking_uri,
    run_context_tags,
    run_name_for,
)
from lossforge.tracking.artifacts import (
    log_config,
    log_datasets,
    log_figures,
    log_hydra_record,
    log_model,
    metric_history,
    system_metrics,
)
from lossforge.tracking.callback import EpochMetricsToMlflow
from lossforge.training.build import Built, ConfigError, build, params
from lossforge.training.checkpoints import LAST, EpochCheckpoints, NoFiniteValidationError, SaveOnInterrupt
from lossforge.training.ctrl_c import CtrlCAtSafePoints
from lossforge.training.guards import ExplodingLossGuard, FiniteLossGuard
from lossforge.training.progress import EpochLines, summary_line
from lossforge.training.resume import (
    OUTCOME_RECORD,
    RandomStateInCheckpoints,
    command_line_overrides,
    last_logged_epoch,
    mark_runs_of_dead_processes,
    process_tags,
    resolve_resume,
    write_outcome_record,
    write_run_record,
)

log = logging.getLogger("lossforge")


def provenance_tags(cfg: DictConfig, task: str) -> dict[str, str]:
    """Tags that say what ran: components, task, and the packages (and versions) that provided them."""
    loss = LOSSES.info(cfg.loss.name)
    tags = {
        "loss": cfg.loss.name,
        "loss.provider": loss.provider,
        "dataset": cfg.dataset.name,
        "task": task,
        "model": cfg.model.name,
        "lossforge.version": __version__,
    }
    if cfg.get("miner") is not None:
        miner = MINERS.info(cfg.miner.name)
        tags.update({"miner": cfg.miner.name, "miner.provider": miner.provider})
    return tags


def train(
    cfg: DictConfig,
    *,
    base_dir: Path | None = None,
    output_dir: Path | None = None,
    sweep_job: SweepJob | None = None,
    tags: Mapping[str, str] | None = None,
    summary: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> dict[str, float]:
    """Run one experiment; return its test metrics and the last epoch's validation metrics.

    Args:
        cfg: the composed config (`conf/config.yaml`). With `resume=<run dir or MLflow run id>` the
            run's own recorded config is used instead, and training continues from its last checkpoint.
        base_dir: where the default MLflow store lives (`<base_dir>/outputs/mlflow.db`); the directory
            the command was started from.
        output_dir: this run's own directory (Hydra's); holds checkpoints, and its `.hydra/` folder is
            logged as an artifact. Defaults to `<base_dir>/outputs/runs/untracked`.
        sweep_job: this run's place in a Hydra multirun (`lossforge.tracking.sweep_job`): the run becomes
            a child of the sweep's parent MLflow run. `None` outside a sweep.
        tags: more MLflow tags for the run (the comparison protocol marks its runs with them).
        summary: print the test metrics, the run id and the dashboard command at the end.
        callbacks: more Lightning callbacks for the training (an Optuna sweep job's pruning reporter,
            `lossforge.training.pruning`).

    With several processes (`trainer=ddp`, `trainer=ddp_cpu`; see `lossforge.distributed`) this
    process is rank 0 and starts the others, or — started by SLURM or torchrun — is one of them; only
    rank 0 creates the MLflow run, writes the run record and prints the summary.
    """
    base_dir = (base_dir or Path.cwd()).resolve()
    tracking_uri = resolve_tracking_uri(cfg.logger.get("tracking_uri"), base_dir=base_dir)
    check_reachable(tracking_uri)  # fail in seconds, before any training time is spent
    check_system_metrics(cfg)
    resume = None
    if cfg.get("resume"):
        overrides = command_line_overrides()
        resume = resolve_resume(str(cfg.resume), base_dir=base_dir, tracking_uri=tracking_uri, overrides=overrides)
        for note in resume.notes:
            log.warning("resume   %s", note)
        cfg, output_dir = resume.config, resume.output_dir
        log.info("resume   run %s from %s", resume.run_id, resume.checkpoint)
    output_dir = output_dir or base_dir / "outputs" / "runs" / "untracked"
    # DDP: how many processes, and whether this one is rank 0 (the only one that records anything).
    processes = distributed.plan_processes(trainer_arguments(cfg))
    built = build(cfg)
    loaders = make_loaders(cfg, built, processes)
    checkpoint = resume.checkpoint if resume else None
    if not processes.is_main:  # DDP: a rank that SLURM or torchrun started trains, and records nothing
        return fit_and_test(cfg, built, loaders, output_dir, processes, checkpoint=checkpoint).metrics
    try:  # runs whose process died without a word (kill -9) end KILLED; never a reason to fail this run
        mark_runs_of_dead_processes(tracking_uri, cfg.logger.experiment)
    except Exception as error:
        log.debug("mlflow   looking for runs of dead processes failed: %s", error)
    interrupt = SaveOnInterrupt(output_dir / "checkpoints")
    ctrl_c = CtrlCAtSafePoints()  # never inside a write to the store: an interrupted SQLite write keeps its lock
    with (
        ctrl_c,  # outermost: a Ctrl-C noted during the run's last write is raised once it is recorded FINISHED
        ending_noted(output_dir, interrupt, single_run=sweep_job is None),
        mlflow_run(
            tracking_uri=tracking_uri,
            experiment=cfg.logger.experiment,
            run_name=run_name_for(cfg, default_run_name(cfg)),
            tags={
                **provenance_tags(cfg, built.task),
                **built.provenance,
                **run_context_tags(sweep_job),
                **process_tags(),
                "lossforge.output_dir": str(output_dir),
                **(tags or {}),
            },
            artifact_location=default_artifact_location(cfg.logger.get("artifact_location"), tracking_uri, base_dir),
            resume_run_id=resume.run_id if resume else None,
        ) as run,
    ):
        if resume is None:
            log_config(run, cfg)
            log_datasets(run, built.data, source={"dataset": params(cfg.dataset)})  # split_seed among them
            write_run_record(output_dir, run_id=run.run_id, tracking_uri=tracking_uri, config=cfg)
        else:  # this process now runs it; an honoured override is a tag (logged params cannot change)
            run.set_tags(
                {
                    **process_tags(),
                    **{f"lossforge.resumed_{k.split('.')[-1]}": v for k, v in resume.honoured.items()},
                }
            )
        (output_dir / OUTCOME_RECORD).unlink(missing_ok=True)  # an earlier attempt's note is no longer true
        log.info("mlflow   run %s in %s", run.run_id, redact_uri(tracking_uri))

        metrics_to_mlflow = EpochMetricsToMlflow(
            run, logged_through_epoch=last_logged_epoch(run.client, run.run_id) if resume else -1
        )
        # DDP: ranks 1 … N-1 on this machine, when no launcher started them (a no-op otherwise).
        replica = (processes, OmegaConf.to_container(cfg, resolve=True), str(output_dir), checkpoint)
        monitor = system_metrics(run, resumed=resume is not None) if cfg.logger.get("system_metrics") else None
        with monitor or contextlib.nullcontext():
            try:
                with distributed.start_processes(processes, train_replica, replica):
                    fitted = fit_and_test(
                        cfg,
                        built,
                        loaders,
                        output_dir,
                        processes,
                        callbacks=[ctrl_c, metrics_to_mlflow, *callbacks],
                        checkpoint=checkpoint,
                        interrupt=interrupt,
                    )
            except Exception:
                last = output_dir / "checkpoints" / LAST
                if last.is_file() and cfg.logger.get("log_checkpoint", True):
                    run.log_artifact(last, "checkpoints")  # the last good state, next to the failure
                raise
            ctrl_c.check()
            run.set_tags({"lossforge.tested_epoch": fitted.tested_epoch + 1})  # numbered from 1, as the steps are
            run.log_metrics(fitted.test_metrics, step=fitted.trainer.current_epoch)
            log_run_artifacts(run, built, output_dir, loss_parameters=params(cfg.loss))
            if cfg.logger.get("log_checkpoint", True) and fitted.best_checkpoint:
                run.log_artifact(Path(fitted.best_checkpoint), "checkpoints")
        if cfg.logger.get("log_model"):  # last: logging a model marks the run FINISHED
            log_model(run, built.module.model, built.data.test.head(8))
    if summary:
        run_name = run_name_for(cfg, default_run_name(cfg))
        verbose = cfg.get("verbose", True)  # a config recorded before `verbose` existed: as before
        _print_summary(fitted.test_metrics, run.run_id, tracking_uri, run_name=run_name, verbose=verbose)
    return fitted.metrics


@contextlib.contextmanager
def ending_noted(output_dir: Path, interrupt: SaveOnInterrupt, *, single_run: bool) -> Iterator[None]:
    """How a run that raised ended, noted beside it (`resume.OUTCOME_RECORD`: the next start reads it when
    the store missed it); after Ctrl-C or SIGTERM on a single run, what happened and how to resume."""
    try:
        yield
    except BaseException as error:
        write_outcome_record(output_dir, error)
        if isinstance(error, SystemExit) and interrupt.received and single_run:
            print(interrupted_message(interrupt, output_dir), file=sys.stderr, flush=True)
        raise


def check_system_metrics(cfg: DictConfig) -> None:
    """`logger.system_metrics=true` needs `psutil`, which MLflow samples the machine with: say so before
    any training time is spent."""
    if cfg.logger.get("system_metrics") and importlib.util.find_spec("psutil") is None:
        raise ConfigError(
            "logger.system_metrics=true needs psutil, with which MLflow samples CPU and memory use: "
            "`pip install psutil` (and `pip install nvidia-ml-py` for GPU use), or set logger.system_metrics=false."
        )


def trainer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """`cfg.trainer` as `lightning.Trainer` keyword arguments."""
    arguments = cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True))
    # DDP: lossforge shards the training data itself (distributed.GlobalBatchShard) and every process
    # evaluates the whole val/test split, so Lightning must not insert its DistributedSampler.
    arguments["use_distributed_sampler"] = False
    return arguments


def make_loaders(cfg: DictConfig, built: Built, processes: distributed.Processes) -> dict[str, DataLoader]:
    """Train, val and test loaders; under DDP the train loader yields this process's share of each step."""
    sampler = train_sampler(  # conf/sampler: random (default) or m_per_class
        cfg.get("sampler"), built.data.train.targets, task=built.data.task, batch_size=cfg.batch_size, seed=cfg.seed
    )
    train_loader = make_loader(
        built.data.train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, sampler=sampler
    )
    if processes.world_size > 1:
        train_loader = distributed.shard_loader(train_loader, rank=processes.rank, num_replicas=processes.world_size)
    return {
        "train": train_loader,
        "val": make_loader(built.data.val, batch_size=cfg.eval_batch_size, shuffle=False, seed=cfg.seed),
        "test": make_loader(built.data.test, batch_size=cfg.eval_batch_size, shuffle=False, seed=cfg.seed),
    }


@dataclass
class Fitted:
    """What `fit_and_test` leaves: the trainer, the metrics, the best checkpoint's path (`""` when no
    epoch was validated) and the epoch whose weights were tested."""

    trainer: L.Trainer
    final_val: dict[str, float]
    test_metrics: dict[str, float]
    best_checkpoint: str
    tested_epoch: int

    @property
    def metrics(self) -> dict[str, float]:
        return {**self.final_val, **self.test_metrics}


def fit_and_test(
    cfg: DictConfig,
    built: Built,
    loaders: dict[str, DataLoader],
    output_dir: Path,
    processes: distributed.Processes,
    *,
    callbacks: list[L.Callback] | tuple[()] = (),
    checkpoint: Path | None = None,
    ready: Callable[[], None] | None = None,
    interrupt: SaveOnInterrupt | None = None,
) -> Fitted:
    """Fit, then test the best epoch's weights; the part of a run that every DDP process does alike (same
    callbacks on every rank: the checkpoint callbacks take part in collectives). `ready` is called just
    before `fit`, when this process can no longer fail on its own (`distributed.start_processes`).
    `interrupt` (made here when not given) notes a Ctrl-C or SIGTERM for the caller's message.

    The tested model is `best.ckpt`: the epoch with the best `val/<selection metric>` of the task
    (`docs/decisions.md` §3; ties keep the earlier epoch). A run that never validated tests its last epoch;
    one whose selection metric was never finite raises
    [NoFiniteValidationError][lossforge.training.checkpoints.NoFiniteValidationError] (`diverged`). Ctrl-C ends it with
    [Interrupted][lossforge.training.run.Interrupted] (exit status 130) instead of Lightning's `exit(1)`."""
    stop_together = distributed.StopTogetherOnSigterm()  # DDP: no deadlock on SIGTERM (no-op in one process)
    spec = built.module.spec
    checkpoints = EpochCheckpoints(
        output_dir / "checkpoints", monitor=f"val/{spec.selection_metric}", higher_is_better=spec.higher_is_better
    )
    interrupt = interrupt or SaveOnInterrupt(output_dir / "checkpoints")
    trainer = L.Trainer(
        **trainer_arguments(cfg),
        logger=False,
        default_root_dir=output_dir,
        callbacks=[
            *callbacks,
            EpochLines(enabled=cfg.get("verbose", True)),
            finite_loss_guard(cfg, built),
            exploding_loss_guard(built),
            RandomStateInCheckpoints(),
            interrupt,
            stop_together,
            checkpoints,  # a Checkpoint: Lightning runs it after all the others
        ],
    )
    distributed.check_agrees(processes, global_rank=trainer.global_rank, world_size=trainer.world_size)
    if ready is not None:
        ready()
    try:
        trainer.fit(
            built.module,
            loaders["train"],
            loaders["val"],
            ckpt_path=checkpoint,
            weights_only=True,  # a checkpoint is data, never code: no arbitrary unpickling
        )
        final_val = validation_metrics(trainer)
        best = checkpoints.best_path
        if best is None and checkpoints.monitor_seen:
            raise NoFiniteValidationError(
                f"{checkpoints.monitor} was never finite in {trainer.current_epoch + 1} epochs: the run diverged, "
                f"and there is no best epoch to test."
            )
        tested_epoch = checkpoints.best_epoch if best is not None else trainer.current_epoch - 1
        results = trainer.test(
            built.module, loaders["test"], ckpt_path=str(best) if best else None, verbose=False, weights_only=True
        )[0]
    except SystemExit as stop:
        if interrupt.received == "SIGINT":  # Lightning answers Ctrl-C with exit(1): say it was a Ctrl-C
            raise Interrupted(130) from stop
        raise
    test_metrics = {key: float(value) for key, value in results.items() if math.isfinite(float(value))}
    if stop_together.received:  # DDP: a SIGTERM during the test pass ends the run now
        raise SIGTERMException
    return Fitted(trainer, final_val, test_metrics, str(best or ""), max(tested_epoch or 0, 0))


class Interrupted(SystemExit):
    """Ctrl-C (SIGINT) stopped the run; exits with status 130 (128 + SIGINT), as a shell reports it."""


def interrupted_message(interrupt: SaveOnInterrupt, output_dir: Path) -> str:
    """What happened and how to continue, after Ctrl-C or SIGTERM stopped a single run."""
    how = "Ctrl-C" if interrupt.received == "SIGINT" else "SIGTERM"
    folder = output_dir / "checkpoints"
    head = f"lossforge: stopped by {how} during epoch {interrupt.epoch}; the run is marked KILLED."
    if not (folder / LAST).is_file():
        return f"{head} It stopped before its first epoch ended, so there is nothing to resume: start it again."
    return (
        f"{head} The end of its last completed epoch is in {folder / LAST} (the moment of the stop in "
        f"interrupted.ckpt). Continue it with:\n  python -m lossforge resume={output_dir}\n"
        f"The interrupted epoch is trained again from its start, so the run ends as an uninterrupted one would."
    )


def finite_loss_guard(cfg: DictConfig, built: Built) -> FiniteLossGuard:
    """The NaN/inf guard for `built`'s loss; off the CPU it checks every `log_every_n_steps` steps."""
    return FiniteLossGuard(
        loss_name=built.module.traits.name,
        learning_rate=built.module.optimizer_config.lr,
        accelerator_window=int(cfg.trainer.get("log_every_n_steps") or 50),
    )


def exploding_loss_guard(built: Built) -> ExplodingLossGuard:
    """The explosion guard for `built`'s loss (`training.guards`): a finite loss that grows far beyond its
    first step's stops the run as diverged."""
    return ExplodingLossGuard(loss_name=built.module.traits.name, learning_rate=built.module.optimizer_config.lr)


def validation_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The last validation epoch's metrics (`val/*`) as plain floats."""
    return {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}


def fit_for_validation(cfg: DictConfig, *, callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Train on the training split and return the last epoch's validation metrics — no test pass, no
    MLflow run, no checkpoint, one process: a tuning trial, which must never see the test split.

    `callbacks` see every epoch's validation metrics (e.g. a pruner that stops a poor trial early).
    """
    built = build(cfg)
    loaders = make_loaders(cfg, built, distributed.Processes())  # one process
    arguments = {**trainer_arguments(cfg), "devices": 1, "num_nodes": 1, "strategy": "auto"}
    arguments.update(enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = L.Trainer(
        **arguments,
        logger=False,
        callbacks=[
            *callbacks,
            finite_loss_guard(cfg, built),
            exploding_loss_guard(built),
        ],
    )
    trainer.fit(built.module, loaders["train"], loaders["val"])
    return validation_metrics(trainer)


def train_replica(
    rank: int,
    ready: Callable[[], None],
    processes: distributed.Processes,
    config: dict[str, Any],
    output_dir: str,
    checkpoint: Path | None,
) -> None:
    """DDP rank `rank` ≥ 1 started by `distributed.start_processes`: rank 0's resolved config, built
    and trained the same way, recording nothing."""
    from lossforge.training import ignore_known_warnings

    ignore_known_warnings()  # as quiet as rank 0 (lossforge.commands.app)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    cfg = OmegaConf.create(config)
    processes = dataclasses.replace(processes, rank=rank)
    built = build(cfg)
    loaders = make_loaders(cfg, built, processes)
    fit_and_test(cfg, built, loaders, Path(output_dir), processes, checkpoint=checkpoint, ready=ready)


def default_run_name(cfg: DictConfig) -> str:
    """`<loss>[+<miner>]-<dataset>-seed<seed>`: readable in the dashboard's run list, and runs that differ
    only by seed tell themselves apart. A sweep's job number is not in the name: it is the run's tag.

    ```pycon
    >>> from omegaconf import OmegaConf
    >>> default_run_name(OmegaConf.create({"loss": {"name": "focal"}, "dataset": {"name": "digits"}, "seed": 3}))
    'focal-digits-seed3'
    >>> cfg = {"loss": {"name": "triplet"}, "miner": {"name": "hard_triplets"}, "dataset": {"name": "digits"}}
    >>> default_run_name(OmegaConf.create({**cfg, "seed": 0}))
    'triplet+hard_triplets-digits-seed0'

    ```
    """
    components = cfg.loss.name if cfg.get("miner") is None else f"{cfg.loss.name}+{cfg.miner.name}"
    return f"{components}-{cfg.dataset.name}-seed{cfg.seed}"


def log_run_artifacts(
    run: RunHandle, built: Built, output_dir: Path, *, loss_parameters: Mapping[str, Any] | None = None
) -> None:
    """The task's plots of the test predictions, the loss/metric curves, the trained loss against its task's
    axis (`lossforge plot`'s figure, with `loss_parameters` in its legend), and Hydra's record of the run."""
    from lossforge.evaluation import plots
    from lossforge.evaluation.loss_figures.drawing import trained_loss_figure

    figures = {}
    history = metric_history(run)
    if history:
        figures["curves.png"] = plots.curves_figure(history)
    outputs, targets = built.module.test_predictions, built.module.test_targets
    if outputs is not None and targets is not None:
        figures.update(spec_for(built.task).figures(outputs, targets, built.data.class_names))
    try:  # a figure must never fail a run that trained
        classes = max(2, built.data.num_outputs)
        figures["loss.png"] = trained_loss_figure(
            built.module.loss, built.task, parameters=loss_parameters, classes=classes
        )
    except Exception as error:
        log.warning("plots    loss.png left out: %s", error)
    log_figures(run, figures)
    log_hydra_record(run, output_dir)


def _print_summary(
    metrics: dict[str, float], run_id: str, tracking_uri: str, *, run_name: str, verbose: bool = True
) -> None:
    """The test metrics, the run id and the dashboard command; one line when `verbose` is off."""
    if not verbose:
        print(summary_line(run_name, metrics, run_id), flush=True)
        return
    headline = [key for key in metrics if key.count("/") == 1]
    width = max((len(key) for key in headline), default=0)
    lines = ["", "Test metrics:"] + [f"  {key:<{width}}  {metrics[key]:.4f}" for key in sorted(headline)]
    lines += [f"MLflow run: {run_id}", f"Dashboard:  {dashboard_command(tracking_uri, run_id=run_id)}", ""]
    print("\n".join(lines), flush=True)
