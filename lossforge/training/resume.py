"""Faults lose nothing: resuming a stopped run into the same MLflow run, from its newest intact checkpoint.

Every run writes `<run dir>/checkpoints/last.ckpt` at the end of every epoch (atomically:
[lossforge.training.checkpoints][]) and records its MLflow run in `<run dir>/lossforge_run.json` (and the
run dir in the run's `lossforge.output_dir` tag). A run stopped in any way — Ctrl-C, SIGTERM, `kill -9`, a
full disk — resumes with:

    python -m lossforge resume=<run dir or MLflow run id>

which reloads the run's own config, continues training from the newest intact end-of-epoch checkpoint (loaded
with `weights_only=True`), and keeps logging into the **same** MLflow run. Because the shuffling order and the
random state are restored too, it ends with the same metrics as an uninterrupted run.

* A damaged checkpoint (truncated by a full disk, say) is named and skipped: the next newest intact one is used
  (`last.ckpt`, else `best.ckpt`, an end-of-epoch state too).
* `interrupted.ckpt` (Ctrl-C, SIGTERM) is used when it holds an end-of-epoch state newer than `last.ckpt`.
  One written in the middle of an epoch is not: the training order cannot be restarted mid-epoch, so the resume
  starts from the end of the last completed epoch and trains the interrupted epoch again from its start — which
  is what keeps the final metrics equal to an uninterrupted run's. The log says so.
* Overrides: a resumed run keeps its recorded configuration. `trainer.max_epochs=N` is honoured (train to N
  epochs; recorded in the tag `lossforge.resumed_max_epochs` and in the run's config record, since logged
  params cannot change); `logger.tracking_uri`, `verbose`, `trainer.enable_progress_bar` and `hydra.*`
  only say where and how to run. Any other override is refused, naming it.
* A run left RUNNING by a process that died without a word (`kill -9`, a lost machine) is marked KILLED when
  the next run starts in the same experiment on the same host: each run records its process id and host
  (tags `lossforge.pid`, `lossforge.host`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from lossforge.run_dirs import check_directory_belongs, process_alive
from lossforge.tracking.runs import ERROR_TAG, OUTCOME_TAG, Outcome, outcome_of
from lossforge.tracking.secrets import scrub_secrets
from lossforge.training.checkpoints import BEST, EPOCH_END_KEY, INTERRUPTED, LAST, SaveOnInterrupt

__all__ = ["SaveOnInterrupt"]  # its home is training.checkpoints; imported from here by older code

log = logging.getLogger("lossforge")

RUN_RECORD = "lossforge_run.json"
CONFIG_RECORD = "lossforge_config.yaml"
OUTCOME_RECORD = "lossforge_outcome.json"
"""How the run in this folder ended, written beside it when it ends badly: the record the next start uses when
the store could not be written then (its disk was full, its server gone)."""


class ResumeError(ValueError):
    """`resume=...` names nothing that can be resumed."""


RESUME_ALLOWS = ("resume", "trainer.max_epochs", "logger.tracking_uri", "verbose", "trainer.enable_progress_bar")
"""Overrides a resume accepts: `trainer.max_epochs` (honoured) and those that say only where and how to run."""


@dataclass(frozen=True)
class Resume:
    """What a resumed run continues: its directory, its MLflow run, its checkpoint and its config."""

    output_dir: Path
    run_id: str
    checkpoint: Path
    config: DictConfig
    notes: tuple[str, ...] = ()
    """What was skipped on the way to `checkpoint` (a damaged file, a mid-epoch one), one sentence each."""
    honoured: Mapping[str, str] = field(default_factory=dict)
    """Overrides the resume honours, e.g. `{"trainer.max_epochs": "10"}`."""


def write_run_record(output_dir: Path, *, run_id: str, tracking_uri: str, config: DictConfig) -> None:
    """Remember which MLflow run this directory belongs to, and the exact config, for `resume=`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RUN_RECORD).write_text(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri}))
    (output_dir / CONFIG_RECORD).write_text(OmegaConf.to_yaml(config))


def resolve_resume(target: str, *, base_dir: Path, tracking_uri: str, overrides: Sequence[str] = ()) -> Resume:
    """Find the run directory for `target` (a path, or an MLflow run id looked up in the store), its newest
    intact checkpoint, and its config with the honoured `overrides` (the command line's) applied."""
    directory = Path(target) if Path(target).is_absolute() else base_dir / target
    if not (directory / RUN_RECORD).is_file():
        directory = _directory_of_run(target, tracking_uri)
        check_directory_belongs(directory, target)  # not a directory another command wrote over
    record = json.loads((directory / RUN_RECORD).read_text())
    honoured = check_resume_overrides(overrides, target=target)
    checkpoint, epoch, notes = newest_intact_checkpoint(directory / "checkpoints", target=target)
    config = OmegaConf.load(directory / CONFIG_RECORD)
    assert isinstance(config, DictConfig)
    if "trainer.max_epochs" in honoured:
        wanted = int(honoured["trainer.max_epochs"])
        if wanted < epoch + 1:
            raise ResumeError(
                f"resume={target} trainer.max_epochs={wanted}: the run has already trained {epoch + 1} epochs "
                f"({checkpoint.name}); a resume can train longer, not undo epochs. Use trainer.max_epochs >= "
                f"{epoch + 1}, or start a new run."
            )
        config.trainer.max_epochs = wanted
        (directory / CONFIG_RECORD).write_text(OmegaConf.to_yaml(config))  # a later resume keeps N
    return Resume(directory, record["run_id"], checkpoint, config, tuple(notes), honoured)


def check_resume_overrides(overrides: Sequence[str], *, target: str) -> dict[str, str]:
    """The overrides a resume honours (`{"trainer.max_epochs": "N"}`); a
    [ResumeError][lossforge.training.resume.ResumeError] naming every override that would change the recorded
    configuration.

    ```pycon
    >>> check_resume_overrides(["resume=outputs/runs/x", "trainer.max_epochs=9", "hydra.run.dir=d"], target="x")
    {'trainer.max_epochs': '9'}
    >>> check_resume_overrides(["resume=x", "seed=1", "loss.gamma=3"], target="x")
    Traceback (most recent call last):
    ...
    lossforge.training.resume.ResumeError: resume=x continues the run with its recorded configuration; these ...

    ```
    """
    honoured, refused = {}, []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra.") or key in RESUME_ALLOWS:
            if key == "trainer.max_epochs":
                honoured[key] = value
        else:
            refused.append(override)
    if refused:
        raise ResumeError(
            f"resume={target} continues the run with its recorded configuration; these overrides would change it: "
            f"{' '.join(refused)}. Drop them, or start a new run with them. A resume honours trainer.max_epochs=N "
            f"(train to N epochs) and accepts only {', '.join(RESUME_ALLOWS[2:])} and hydra.* besides."
        )
    return honoured


def command_line_overrides() -> list[str]:
    """The command line's overrides when Hydra started this process (`[]` for a config composed in code)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def checkpoint_position(path: Path) -> tuple[int, int, bool]:
    """`(epoch, global_step, written at an epoch's end)` of a checkpoint; raises if it cannot be read."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    default_end = path.name != INTERRUPTED  # a checkpoint written before lossforge marked them
    return int(state["epoch"]), int(state["global_step"]), bool(state.get(EPOCH_END_KEY, default_end))


def newest_intact_checkpoint(folder: Path, *, target: str) -> tuple[Path, int, list[str]]:
    """The newest checkpoint in `folder` that loads and ends an epoch: its path, epoch, and a sentence for
    each checkpoint skipped on the way (damaged, or written mid-epoch)."""
    usable: list[tuple[int, int, Path]] = []
    notes: list[str] = []
    for name in (LAST, INTERRUPTED, BEST):
        path = folder / name
        if not path.is_file():
            continue
        try:
            epoch, step, at_epoch_end = checkpoint_position(path)
        except Exception as error:  # truncated by a full disk or a crash: torch names no file
            reason = str(error).splitlines()[0][:200]
            notes.append(f"{path} is damaged (truncated or corrupt: {reason}) and is skipped")
            continue
        if at_epoch_end:
            usable.append((step, epoch, path))
        else:
            notes.append(
                f"{path} was written in the middle of epoch {epoch} (Ctrl-C or SIGTERM); the training order cannot "
                f"be restarted mid-epoch, so epoch {epoch} is trained again from its start — the run ends as an "
                f"uninterrupted one would"
            )
    if not usable:
        found = "; ".join(notes) if notes else f"{folder} holds no checkpoint"
        raise ResumeError(
            f"resume={target}: nothing to resume from — {found}. The run was stopped before its first epoch "
            f"ended, or its checkpoints are lost; start it again instead."
        )
    _, epoch, path = max(usable, key=lambda item: (item[0], item[1]))
    if path.name != LAST:
        notes.append(f"resuming from {path.name} (end of epoch {epoch}), the newest intact end-of-epoch checkpoint")
    return path, epoch, notes


def write_outcome_record(output_dir: Path, error: BaseException) -> None:
    """Note beside the run how it ended (`OUTCOME_RECORD`); never raises — its disk may be the full one."""
    reason = scrub_secrets(f"{type(error).__name__}: {error}")[:5000]
    try:
        (output_dir / OUTCOME_RECORD).write_text(json.dumps({"outcome": outcome_of(error).value, "error": reason}))
    except OSError:
        pass


def process_tags() -> dict[str, str]:
    """Which process runs this run, for finding it dead later: `lossforge.pid` and `lossforge.host`."""
    return {"lossforge.pid": str(os.getpid()), "lossforge.host": socket.gethostname()}

    return True


def mark_runs_of_dead_processes(tracking_uri: str, experiment: str) -> list[str]:
    """Mark KILLED (`lossforge.outcome=killed`) every run of `experiment` still RUNNING whose process, on
    this host, is gone — left so by `kill -9` or a crash that gave it no chance to say. Returns their ids.

    A process id the system has since given to another process keeps its run RUNNING (the safe mistake).
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    host = socket.gethostname()
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`lossforge.host` = '{host}'"
    )
    marked = []
    for run in runs:
        pid = run.data.tags.get("lossforge.pid", "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        outcome, reason = _recorded_outcome(run.data.tags.get("lossforge.output_dir"))
        if outcome is None:
            outcome, reason = Outcome.KILLED, f"its process {pid} on {host} ended without a word (kill -9?)"
        else:
            reason = f"{reason} (recorded at the next start: the store could not be written when the run ended)"
        client.set_tag(run.info.run_id, OUTCOME_TAG, outcome.value)
        client.set_tag(run.info.run_id, ERROR_TAG, reason[:5000])
        client.set_terminated(run.info.run_id, status=outcome.mlflow_status)
        log.warning(
            "mlflow   run %s was left RUNNING by process %s, which is gone: marked %s",
            run.info.run_id,
            pid,
            outcome.mlflow_status,
        )
        marked.append(run.info.run_id)
    return marked


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


def _recorded_outcome(output_dir: str | None) -> tuple[Outcome | None, str]:
    """The outcome a run noted beside itself (`OUTCOME_RECORD`), or `(None, "")`."""
    try:
        record = json.loads((Path(output_dir or "") / OUTCOME_RECORD).read_text())
        return Outcome(record["outcome"]), str(record["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, ""


def last_logged_epoch(client: Any, run_id: str, key: str = "train/loss") -> int:
    """The number (1-based: MLflow's step) of the last epoch a (resumed) run already logged, or -1."""
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
    """Before a checkpoint is loaded: the loss's own parameters (class proxies, …) in `state_dict` (under
    `prefix`) must have the sizes this run's loss was prepared with — sizes that come from the data (the
    number of classes) and the model (the embedding size). A [ResumeError][lossforge.training.resume.ResumeError] naming
    the loss and both sizes otherwise, instead of torch's size-mismatch text; it holds for a plugin's loss as for
    lossforge's.

    ```pycon
    >>> loss = torch.nn.Linear(4, 3)  # stands for a loss with a (3, 4) parameter
    >>> check_loss_parameters({"loss.weight": torch.zeros(5, 4)}, loss, loss_name="arcface", prefix="loss.")
    Traceback (most recent call last):
    ...
    lossforge.training.resume.ResumeError: Loss 'arcface': the checkpoint's 'weight' is (5, 4), this run's is (3, 4) ...

    ```
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
    """`random.setstate` wants the nested tuples that a checkpoint round trip may turn into lists."""
    return tuple(_as_tuples(item) for item in value) if isinstance(value, list | tuple) else value
