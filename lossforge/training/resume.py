"""Faults lose nothing: checkpoints on interrupt, and resuming a killed run into the same MLflow run.

Every run writes ``<run dir>/checkpoints/last.ckpt`` at the end of each epoch and records its MLflow run
in ``<run dir>/lossforge_run.json`` (and the run dir in the run's ``lossforge.output_dir`` tag). A run
killed in any way — even ``kill -9`` — resumes with::

    python -m lossforge resume=<run dir or MLflow run id>

which reloads the run's own config, continues training from ``last.ckpt`` (loaded with
``weights_only=True``), and keeps logging into the **same** MLflow run. Because the shuffling order and
the random state are restored too, it ends with the same metrics as an uninterrupted run.
Ctrl-C and SIGTERM additionally save ``interrupted.ckpt`` at the moment they arrive.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from lossforge.run_dirs import check_directory_belongs

RUN_RECORD = "lossforge_run.json"
CONFIG_RECORD = "lossforge_config.yaml"


class ResumeError(ValueError):
    """``resume=...`` names nothing that can be resumed."""


@dataclass(frozen=True)
class Resume:
    """What a resumed run continues: its directory, its MLflow run, its checkpoint and its config."""

    output_dir: Path
    run_id: str
    checkpoint: Path
    config: DictConfig


def write_run_record(output_dir: Path, *, run_id: str, tracking_uri: str, config: DictConfig) -> None:
    """Remember which MLflow run this directory belongs to, and the exact config, for ``resume=``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RUN_RECORD).write_text(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri}))
    (output_dir / CONFIG_RECORD).write_text(OmegaConf.to_yaml(config))


def resolve_resume(target: str, *, base_dir: Path, tracking_uri: str) -> Resume:
    """Find the run directory for ``target`` (a path, or an MLflow run id looked up in the store)."""
    directory = Path(target) if Path(target).is_absolute() else base_dir / target
    if not (directory / RUN_RECORD).is_file():
        directory = _directory_of_run(target, tracking_uri)
        check_directory_belongs(directory, target)  # not a directory another command wrote over
    record = json.loads((directory / RUN_RECORD).read_text())
    checkpoint = directory / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise ResumeError(
            f"resume={target}: {directory} has no checkpoints/last.ckpt — the run was stopped before its "
            f"first epoch ended, so there is nothing to resume; start it again instead."
        )
    config = OmegaConf.load(directory / CONFIG_RECORD)
    assert isinstance(config, DictConfig)
    return Resume(output_dir=directory, run_id=record["run_id"], checkpoint=checkpoint, config=config)


def _directory_of_run(run_id: str, tracking_uri: str) -> Path:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        run = MlflowClient(tracking_uri).get_run(run_id)
    except MlflowException as error:
        raise ResumeError(
            f"resume={run_id}: neither a run directory (with {RUN_RECORD}) nor an MLflow run in {tracking_uri}"
        ) from error
    directory = run.data.tags.get("lossforge.output_dir")
    if not directory or not (Path(directory) / RUN_RECORD).is_file():
        raise ResumeError(f"resume={run_id}: the run's directory {directory!r} is gone; it cannot be resumed here")
    return Path(directory)


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM, save ``interrupted.ckpt`` before Lightning shuts down."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt | SystemExit):  # SIGTERM arrives as SIGTERMException
            trainer.save_checkpoint(self.directory / "interrupted.ckpt")


def last_logged_epoch(client: Any, run_id: str, key: str = "train/loss") -> int:
    """The last epoch a (resumed) run already logged, or -1."""
    history = client.get_metric_history(run_id, key)
    return max((metric.step for metric in history), default=-1)


class RandomStateInCheckpoints(L.Callback):
    """Keep torch's and Python's random state in every checkpoint and restore it on resume, so a resumed
    run draws the same random numbers (shuffling, sampling miners, dropout) as an uninterrupted one."""

    KEY = "lossforge_rng"

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.KEY] = {"torch": torch.get_rng_state(), "python": random.getstate()}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(self.KEY)
        if state is not None:
            torch.set_rng_state(state["torch"])
            random.setstate(_as_tuples(state["python"]))


def check_loss_parameters(state_dict: Mapping[str, Any], loss: Any, *, loss_name: str, prefix: str) -> None:
    """Before a checkpoint is loaded: the loss's own parameters (class proxies, …) in ``state_dict`` (under
    ``prefix``) must have the sizes this run's loss was prepared with — sizes that come from the data (the
    number of classes) and the model (the embedding size). A :class:`ResumeError` naming the loss and both
    sizes otherwise, instead of torch's size-mismatch text; it holds for a plugin's loss as for lossforge's.

    >>> loss = torch.nn.Linear(4, 3)  # stands for a loss with a (3, 4) parameter
    >>> check_loss_parameters({"loss.weight": torch.zeros(5, 4)}, loss, loss_name="arcface", prefix="loss.")
    Traceback (most recent call last):
    ...
    lossforge.training.resume.ResumeError: Loss 'arcface': the checkpoint's 'weight' is (5, 4), this run's is (3, 4) ...
    """
    if not isinstance(loss, torch.nn.Module):
        return
    own = dict(loss.named_parameters())
    saved = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
    hint = (
        "(the number of classes comes from the dataset, the embedding size from the model): resume with the "
        "dataset and model the checkpoint was trained with"
    )
    for key, parameter in own.items():
        value = saved.get(key)
        if value is None:
            raise ResumeError(
                f"Loss {loss_name!r}: the checkpoint has no {key!r} (this run's is {_size(parameter)}); it was "
                f"trained with another loss or configuration {hint}"
            )
        if tuple(value.shape) != tuple(parameter.shape):
            raise ResumeError(
                f"Loss {loss_name!r}: the checkpoint's {key!r} is {_size(value)}, this run's is {_size(parameter)} "
                f"{hint}"
            )
    extra = sorted(set(saved) - set(own) - {key for key, _ in loss.named_buffers()})
    if extra:
        raise ResumeError(
            f"Loss {loss_name!r}: the checkpoint has parameters {extra} this run's loss does not; it was trained "
            f"with another loss or configuration {hint}"
        )


def _size(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(str(size) for size in tensor.shape) + ")"


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants the nested tuples that a checkpoint round trip may turn into lists."""
    return tuple(_as_tuples(item) for item in value) if isinstance(value, list | tuple) else value
