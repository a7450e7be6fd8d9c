"""``train(cfg)``: build everything in a fixed order, fit, test, record, return the test metrics.

Order (one log line each): seed → data → loss (+ task check) → miner → model → MLflow run → trainer →
fit → test → summary. Data flows one way: the config names components, the registries build them, the
task trains them, tracking records the result. Nothing is built from a module path in the config.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

import lossforge
from lossforge import distributed
from lossforge.data import DataSplits, build_dataset
from lossforge.data.loaders import make_loader
from lossforge.models import build_model, count_parameters
from lossforge.registry import LOSSES, MINERS
from lossforge.tracking import (
    RunHandle,
    check_reachable,
    dashboard_command,
    default_artifact_location,
    mlflow_run,
    params_for_mlflow,
    redact_uri,
    resolve_tracking_uri,
    run_context_tags,
)
from lossforge.training.module import LossTask, OptimizerConfig
from lossforge.training.resume import SaveOnInterrupt, last_logged_epoch, resolve_resume, write_run_record

log = logging.getLogger("lossforge")


class EpochMetricsToMlflow(L.Callback):
    """Log every epoch's train/val metrics to MLflow with the epoch as the step.

    It lives here, not in ``lossforge.tracking``, so that importing the tracking helpers (``lossforge
    compare``, the sweep callback in the launcher process) does not import Lightning (~3 s).
    """

    def __init__(self, run: RunHandle, *, logged_through_epoch: int = -1) -> None:
        self.run = run
        self.logged_through_epoch = logged_through_epoch  # a resumed run does not log an epoch twice
        #: ``{metric: [(epoch, value), …]}`` — what was logged, for the curves plot.
        self.history: dict[str, list[tuple[int, float]]] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # where the run trains: timings of runs only compare on the same device
            self.run.set_tags({"lossforge.device": describe_device(trainer)})

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs validation before this hook, so train/* and val/* of the epoch are both here.
        metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(("train/", "val/")) and value.numel() == 1
        }
        if metrics and trainer.is_global_zero and trainer.current_epoch > self.logged_through_epoch:
            self.run.log_metrics(metrics, step=trainer.current_epoch)
            for key, value in metrics.items():
                self.history.setdefault(key, []).append((trainer.current_epoch, value))


def describe_device(trainer: L.Trainer) -> str:
    """Where ``trainer`` trains: ``cuda: NVIDIA H100 80GB HBM3 (1 process)``, ``cpu: 2 threads (2 processes)``."""
    device = trainer.strategy.root_device
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    processes = trainer.world_size
    return f"{device.type}: {what} ({processes} process{'es' if processes > 1 else ''})"


#: Class-labelled datasets can also train an embedding with a metric loss.
_METRIC_CAPABLE = ("multiclass", "binary")


class ConfigError(ValueError):
    """A configuration that cannot work (a loss that does not serve the dataset's task, …)."""


def training_task(loss_name: str, loss_tasks: tuple[str, ...], dataset: str, dataset_task: str) -> str:
    """The task a loss trains on a dataset: the dataset's own task, or ``"metric"`` for a metric loss on
    class labels. Anything else fails before training, naming both and the losses that would fit.
    """
    if dataset_task in loss_tasks:
        return dataset_task
    if "metric" in loss_tasks and dataset_task in _METRIC_CAPABLE:
        return "metric"
    fitting = [name for name in LOSSES.names() if _serves(name, dataset_task)]
    raise ConfigError(
        f"Loss {loss_name!r} serves {', '.join(loss_tasks)}, but dataset {dataset!r} is a {dataset_task} "
        f"task. Losses that fit {dataset!r}: {', '.join(fitting) or 'none'}."
    )


def _serves(loss_name: str, dataset_task: str) -> bool:
    try:
        tasks = LOSSES.load(loss_name).tasks
    except Exception:  # a broken plugin is reported by `lossforge list`, not here
        return False
    return dataset_task in tasks or ("metric" in tasks and dataset_task in _METRIC_CAPABLE)


def _params(node: DictConfig | None) -> dict[str, Any]:
    params = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    assert isinstance(params, dict)
    params.pop("name", None)
    return params


@dataclass
class Built:
    """Everything ``train`` builds before fitting (also what tests inspect)."""

    data: DataSplits
    task: str
    module: LossTask


def build(cfg: DictConfig) -> Built:
    """Build data, loss, miner, model and the LightningModule from ``cfg`` — no training, no tracking."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = build_dataset(cfg.dataset.name, seed=cfg.seed, **_params(cfg.dataset))
    log.info(
        "data     %s: %s task, %d/%d/%d train/val/test samples, %d features",
        data.name,
        data.task,
        len(data.train.targets),
        len(data.val.targets),
        len(data.test.targets),
        data.input_dim,
    )

    loss_name = cfg.loss.name
    loss = LOSSES.build(loss_name, **_params(cfg.loss))
    task = training_task(loss_name, tuple(loss.tasks), data.name, data.task)
    if task in ("multiclass", "binary"):
        unseen = sorted(set(data.test.targets.unique().tolist()) - set(data.train.targets.unique().tolist()))
        if unseen:
            raise ConfigError(
                f"Dataset {data.name!r} tests on classes never seen in training ({unseen}): a {task} classifier "
                f"cannot predict them. Evaluate on unseen classes with a metric loss (retrieval), e.g. "
                f"loss=triplet miner=semihard_triplets, or drop held_out_classes."
            )
    if hasattr(loss, "prepare"):  # e.g. class weights computed from the training labels
        loss.prepare(targets=data.train.targets, num_classes=data.num_outputs)
    log.info("loss     %r on the %s task", loss, task)

    miner = None
    if cfg.get("miner") is not None:
        if task != "metric":
            raise ConfigError(
                f"Miner {cfg.miner.name!r} mines pairs/triplets for metric losses, but loss {loss_name!r} "
                f"is a {task} loss. Drop the miner (miner=null) or pick a metric loss: "
                f"{', '.join(n for n in LOSSES.names() if _serves_metric(n)) or 'none'}."
            )
        miner_params = _params(cfg.miner)
        for shared in ("margin", "distance"):  # a loss and its miner share one margin unless told otherwise
            if miner_params.get(shared, "absent") is None and hasattr(loss, shared):
                miner_params[shared] = getattr(loss, shared)
        miner = MINERS.build(cfg.miner.name, **miner_params)
        wanted = getattr(loss, "tuple_kind", None)
        if wanted is not None and wanted != miner.tuple_kind:
            raise ConfigError(
                f"Loss {loss_name!r} takes {wanted}s but miner {cfg.miner.name!r} mines {miner.tuple_kind}s. "
                f"Miners that mine {wanted}s: "
                f"{', '.join(n for n in MINERS.names() if MINERS.load(n).tuple_kind == wanted)}."
            )
        log.info("miner    %r", miner)

    model = build_model(
        cfg.model.name,
        input_dim=data.input_dim,
        output_dim=data.num_outputs,
        embedding=task == "metric",
        **_params(cfg.model),
    )
    log.info("model    %s with %s parameters", cfg.model.name, f"{count_parameters(model):,}")

    module = LossTask(
        model=model,
        loss=loss,
        miner=miner,
        task=task,
        num_outputs=data.num_outputs,
        class_names=data.class_names,
        optimizer=OptimizerConfig(**_params(cfg.optimizer)),
    )
    return Built(data=data, task=task, module=module)


def _serves_metric(loss_name: str) -> bool:
    try:
        return "metric" in LOSSES.load(loss_name).tasks
    except Exception:
        return False


def provenance_tags(cfg: DictConfig, task: str) -> dict[str, str]:
    """Tags that say what ran: components, task, and the packages (and versions) that provided them."""
    loss = LOSSES.info(cfg.loss.name)
    tags = {
        "loss": cfg.loss.name,
        "loss.provider": loss.provider,
        "dataset": cfg.dataset.name,
        "task": task,
        "model": cfg.model.name,
        "lossforge.version": lossforge.__version__,
    }
    if cfg.get("miner") is not None:
        miner = MINERS.info(cfg.miner.name)
        tags.update({"miner": cfg.miner.name, "miner.provider": miner.provider})
    return tags


def train(cfg: DictConfig, *, base_dir: Path | None = None, output_dir: Path | None = None) -> dict[str, float]:
    """Run one experiment; return its test metrics and the last epoch's validation metrics.

    Args:
        cfg: the composed config (``conf/config.yaml``). With ``resume=<run dir or MLflow run id>`` the
            run's own recorded config is used instead, and training continues from its last checkpoint.
        base_dir: where the default MLflow store lives (``<base_dir>/outputs/mlflow.db``); the directory
            the command was started from.
        output_dir: this run's own directory (Hydra's); holds checkpoints, and its ``.hydra/`` folder is
            logged as an artifact. Defaults to ``<base_dir>/outputs/runs/untracked``.

    With several processes (``trainer=ddp``, ``trainer=ddp_cpu``; see ``lossforge.distributed``) this
    process is rank 0 and starts the others, or — started by SLURM or torchrun — is one of them; only
    rank 0 creates the MLflow run, writes the run record and prints the summary.
    """
    base_dir = (base_dir or Path.cwd()).resolve()
    tracking_uri = resolve_tracking_uri(cfg.logger.get("tracking_uri"), base_dir=base_dir)
    check_reachable(tracking_uri)  # fail in seconds, before any training time is spent
    resume = (
        resolve_resume(str(cfg.resume), base_dir=base_dir, tracking_uri=tracking_uri) if cfg.get("resume") else None
    )
    if resume is not None:
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
    context = run_context_tags()
    with mlflow_run(
        tracking_uri=tracking_uri,
        experiment=cfg.logger.experiment,
        run_name=cfg.get("run_name") or default_run_name(cfg, context.get("hydra.job_num")),
        tags={**provenance_tags(cfg, built.task), **context, "lossforge.output_dir": str(output_dir)},
        artifact_location=default_artifact_location(cfg.logger.get("artifact_location"), tracking_uri, base_dir),
        resume_run_id=resume.run_id if resume else None,
    ) as run:
        if resume is None:
            _log_config(run, cfg)
            write_run_record(output_dir, run_id=run.run_id, tracking_uri=tracking_uri, config=cfg)
        log.info("mlflow   run %s in %s", run.run_id, redact_uri(tracking_uri))

        metrics_to_mlflow = EpochMetricsToMlflow(
            run, logged_through_epoch=last_logged_epoch(run.client, run.run_id) if resume else -1
        )
        # DDP: ranks 1 … N-1 on this machine, when no launcher started them (a no-op otherwise).
        replica = (processes, OmegaConf.to_container(cfg, resolve=True), str(output_dir), checkpoint)
        try:
            with distributed.start_processes(processes, train_replica, replica):
                fitted = fit_and_test(
                    cfg, built, loaders, output_dir, processes, callbacks=[metrics_to_mlflow], checkpoint=checkpoint
                )
        except Exception:
            last = output_dir / "checkpoints" / "last.ckpt"
            if last.is_file() and cfg.logger.get("log_checkpoint", True):
                run.log_artifact(last, "checkpoints")  # the last good state, next to the failure
            raise
        run.log_metrics(fitted.test_metrics, step=fitted.trainer.current_epoch)
        log_run_artifacts(run, built, output_dir)
        if cfg.logger.get("log_checkpoint", True) and fitted.best_checkpoint:
            run.log_artifact(Path(fitted.best_checkpoint), "checkpoints")
    _print_summary(fitted.test_metrics, run.run_id, tracking_uri)
    return fitted.metrics


def trainer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.trainer`` as ``lightning.Trainer`` keyword arguments."""
    arguments = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(arguments, dict)
    # DDP: lossforge shards the training data itself (distributed.GlobalBatchShard) and every process
    # evaluates the whole val/test split, so Lightning must not insert its DistributedSampler.
    arguments["use_distributed_sampler"] = False
    return arguments


def make_loaders(cfg: DictConfig, built: Built, processes: distributed.Processes) -> dict[str, DataLoader]:
    """Train, val and test loaders; under DDP the train loader yields this process's share of each step."""
    train_loader = make_loader(built.data.train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed)
    if processes.world_size > 1:
        train_loader = distributed.shard_loader(train_loader, rank=processes.rank, num_replicas=processes.world_size)
    return {
        "train": train_loader,
        "val": make_loader(built.data.val, batch_size=cfg.eval_batch_size, shuffle=False, seed=cfg.seed),
        "test": make_loader(built.data.test, batch_size=cfg.eval_batch_size, shuffle=False, seed=cfg.seed),
    }


@dataclass
class Fitted:
    """What ``fit_and_test`` leaves: the trainer, the metrics, and the best checkpoint's path."""

    trainer: L.Trainer
    final_val: dict[str, float]
    test_metrics: dict[str, float]
    best_checkpoint: str

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
) -> Fitted:
    """Fit, then test; the part of a run that every DDP process does alike (same callbacks on every rank:
    ``ModelCheckpoint`` and ``SaveOnInterrupt`` take part in collectives). ``ready`` is called just before
    ``fit``, when this process can no longer fail on its own (``distributed.start_processes``)."""
    stop_together = distributed.StopTogetherOnSigterm()  # DDP: no deadlock on SIGTERM (no-op in one process)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="best",
        monitor="val/loss",
        mode="min",
        save_last=True,
        save_on_train_epoch_end=True,  # after this epoch's metrics are logged: resume never logs twice
    )
    trainer = L.Trainer(
        **trainer_arguments(cfg),
        logger=False,
        default_root_dir=output_dir,
        callbacks=[
            *callbacks,
            checkpoints,
            SaveOnInterrupt(output_dir / "checkpoints"),
            stop_together,
        ],
    )
    distributed.check_agrees(processes, global_rank=trainer.global_rank, world_size=trainer.world_size)
    if ready is not None:
        ready()
    trainer.fit(
        built.module,
        loaders["train"],
        loaders["val"],
        ckpt_path=checkpoint,
        weights_only=True,  # a checkpoint is data, never code: no arbitrary unpickling
    )
    final_val = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    results = trainer.test(built.module, loaders["test"], verbose=False, weights_only=True)[0]
    test_metrics = {key: float(value) for key, value in results.items() if math.isfinite(float(value))}
    if stop_together.received:  # DDP: a SIGTERM during the test pass ends the run now
        raise SIGTERMException
    return Fitted(trainer, final_val, test_metrics, checkpoints.best_model_path)


def train_replica(
    rank: int,
    ready: Callable[[], None],
    processes: distributed.Processes,
    config: dict[str, Any],
    output_dir: str,
    checkpoint: Path | None,
) -> None:
    """DDP rank ``rank`` ≥ 1 started by ``distributed.start_processes``: rank 0's resolved config, built
    and trained the same way, recording nothing."""
    import warnings

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # as quiet as rank 0 (lossforge.cli)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    cfg = OmegaConf.create(config)
    processes = dataclasses.replace(processes, rank=rank)
    built = build(cfg)
    loaders = make_loaders(cfg, built, processes)
    fit_and_test(cfg, built, loaders, Path(output_dir), processes, checkpoint=checkpoint, ready=ready)


def _log_config(run: RunHandle, cfg: DictConfig) -> None:
    """The flattened resolved config as params (secrets scrubbed), and the config itself as YAML."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    params, too_long = params_for_mlflow(config)
    run.log_params(params)
    if too_long:
        run.set_tags({"lossforge.long_params": ",".join(too_long)})
    run.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")


def default_run_name(cfg: DictConfig, job_num: str | None = None) -> str:
    """``<loss>-<dataset>`` (plus ``-<job number>`` in a sweep): readable in the dashboard's run list."""
    name = f"{cfg.loss.name}-{cfg.dataset.name}"
    if cfg.get("miner") is not None:
        name = f"{cfg.loss.name}+{cfg.miner.name}-{cfg.dataset.name}"
    return f"{name}-{job_num}" if job_num is not None else name


def log_run_artifacts(run: RunHandle, built: Built, output_dir: Path) -> None:
    """Plots for the task, the loss/metric curves, and Hydra's record of the run (``.hydra/``)."""
    import matplotlib.pyplot as plt

    from lossforge.evaluation import plots

    module, data = built.module, built.data
    history = {
        key: [(metric.step, metric.value) for metric in run.client.get_metric_history(run.run_id, key)]
        for key in run.client.get_run(run.run_id).data.metrics
        if key.startswith(("train/", "val/")) and key.count("/") == 1
    }
    figures = {}
    if history:
        figures["curves.png"] = plots.curves_figure(history)
    outputs, targets = module.test_predictions, module.test_targets
    if outputs is not None and targets is not None:
        if built.task == "multiclass":
            probabilities = outputs.softmax(dim=-1)
            confidence, predicted = probabilities.max(dim=-1)
            figures["confusion_matrix.png"] = plots.confusion_matrix_figure(predicted, targets, data.class_names)
            figures["reliability.png"] = plots.reliability_figure(confidence, predicted == targets)
        elif built.task == "binary":
            probability = outputs.sigmoid()
            predicted = (outputs > 0).long()
            confidence = torch.where(predicted == 1, probability, 1 - probability)
            figures["confusion_matrix.png"] = plots.confusion_matrix_figure(predicted, targets, data.class_names)
            figures["reliability.png"] = plots.reliability_figure(confidence, predicted == targets)
        elif built.task == "regression":
            figures["predicted_vs_true.png"] = plots.scatter_figure(outputs, targets)
        elif built.task == "metric":
            figures["embeddings.png"] = plots.embedding_figure(outputs, targets, data.class_names)
    for name, figure in figures.items():
        run.client.log_figure(run.run_id, figure, f"plots/{name}")
        plt.close(figure)
    hydra_record = output_dir / ".hydra"
    if hydra_record.is_dir():  # as text, through the secret scrubber
        for file in sorted(hydra_record.glob("*.yaml")):
            run.log_text(file.read_text(), f"hydra/{file.name}")


def _print_summary(metrics: dict[str, float], run_id: str, tracking_uri: str) -> None:
    headline = [key for key in metrics if key.count("/") == 1]
    width = max((len(key) for key in headline), default=0)
    lines = ["", "Test metrics:"] + [f"  {key:<{width}}  {metrics[key]:.4f}" for key in sorted(headline)]
    lines += [f"MLflow run: {run_id}", f"Dashboard:  {dashboard_command(tracking_uri)}", ""]
    print("\n".join(lines), flush=True)
