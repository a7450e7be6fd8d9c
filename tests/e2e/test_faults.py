"""Faults lose nothing: non-finite loss, Ctrl-C, SIGTERM, kill -9 + resume, and secrets stay out of MLflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import QUICK_RUN, child_env, compose_config, default_store_runs, run_lossforge
from omegaconf import OmegaConf
from torch import nn

from lossforge.registry import LOSSES
from lossforge.training.guards import FiniteLossGuard, NonFiniteLossError
from lossforge.training.run import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]


class GoesWrongAfter(nn.Module):
    """Cross-entropy until step ``steps``, then NaN (or Ctrl-C): a fault at a known moment."""

    tasks = ("multiclass",)
    name = "goes_wrong_after"

    def __init__(self, *, steps: int = 30, fault: str = "nan", reduction: str = "mean") -> None:
        super().__init__()
        self.steps, self.fault, self.calls = steps, fault, 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls > self.steps:
                if self.fault == "interrupt":
                    raise KeyboardInterrupt
                return logits.sum() * float("nan")
        return nn.functional.cross_entropy(logits, target)


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    if "goes_wrong_after" not in LOSSES.names():
        LOSSES.register("goes_wrong_after", GoesWrongAfter)
    yield


def config(*overrides: str):
    cfg = compose_config("model.hidden=[16]", "trainer.enable_progress_bar=false", *overrides)
    OmegaConf.set_struct(cfg, False)
    return cfg


def only_run(directory: Path):
    client, (run,) = default_store_runs(directory)
    return client, run


@pytest.mark.parametrize("window", [1, 7], ids=["every_step", "every_7_steps_as_on_a_gpu"])
def test_non_finite_loss_stops_names_the_step_marks_failed_and_keeps_the_last_checkpoint(
    tmp_path: Path, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a GPU the losses are read back every `log_every_n_steps` steps, not every step: the error still
    # names the first bad step, and training stops before a checkpoint of NaN weights can be written.
    monkeypatch.setattr(FiniteLossGuard, "window", lambda self, loss: window)
    cfg = config("trainer.max_epochs=5")
    cfg.loss = {"name": "goes_wrong_after", "steps": 30}  # digits: 20 steps an epoch → NaN in epoch 1
    with pytest.raises(NonFiniteLossError, match=r"goes_wrong_after loss became nan at epoch 2, step 30"):
        train(cfg, base_dir=tmp_path, output_dir=tmp_path / "run")
    client, run = only_run(tmp_path)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("FAILED", "diverged")
    assert "step 30" in run.data.tags["lossforge.error"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()  # epoch 0, the last good state
    assert "checkpoints/last.ckpt" in {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(value).all() for value in state["state_dict"].values())


def test_ctrl_c_marks_the_run_killed_and_saves_a_checkpoint(tmp_path: Path) -> None:
    cfg = config("trainer.max_epochs=5")
    cfg.loss = {"name": "goes_wrong_after", "steps": 25, "fault": "interrupt"}
    with pytest.raises(SystemExit) as stop:  # Lightning's exit(1) for Ctrl-C becomes 128 + SIGINT
        train(cfg, base_dir=tmp_path, output_dir=tmp_path / "run")
    assert stop.value.code == 130
    _, run = only_run(tmp_path)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("KILLED", "killed")
    assert (tmp_path / "run" / "checkpoints" / "interrupted.ckpt").is_file()


class CtrlCInsideAWrite(L.Callback):
    """Presses Ctrl-C in the middle of epoch 1's end, between two writes to the run's store."""

    def __init__(self) -> None:
        self.write_finished = False

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the signal is delivered here: a KeyboardInterrupt would leave mid-write
            self.write_finished = True


def test_ctrl_c_in_the_middle_of_a_write_ends_the_run_at_the_next_batch_killed(
    tmp_path: Path,
) -> None:
    # An interrupted SQLite write can keep the store's lock, and then the run's KILLED record (and those of
    # a sweep's other workers) fails with "database is locked": Ctrl-C waits for the next batch instead.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also under `pytest &`
    press = CtrlCInsideAWrite()
    try:
        with pytest.raises(SystemExit) as stop:
            train(config("trainer.max_epochs=5"), base_dir=tmp_path, output_dir=tmp_path / "run", callbacks=[press])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stop.value.code == 130 and press.write_finished
    _, run = only_run(tmp_path)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("KILLED", "killed")
    assert run.data.metrics  # epoch 1's metrics, written after the Ctrl-C
    state = torch.load(tmp_path / "run" / "checkpoints" / "interrupted.ckpt", weights_only=False)
    assert state["epoch"] == 1  # stopped as epoch 2 began, not in epoch 1's end
    assert signal.getsignal(signal.SIGINT) is previous


def start(cwd: Path, *overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lossforge", "trainer.enable_progress_bar=false", *overrides],
        cwd=cwd,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_checkpoint(cwd: Path, process: subprocess.Popen[str], timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((cwd / "outputs" / "runs").glob("*/*/checkpoints/last.ckpt"))
        if found:
            return found[0].parent.parent
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


SLOW_ENOUGH = ["trainer.max_epochs=6", "model.hidden=[256,256]"]


def test_kill_9_then_resume_continues_the_same_run_and_ends_like_an_uninterrupted_one(tmp_path: Path) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference_dir.mkdir(), killed_dir.mkdir()
    reference = start(reference_dir, *SLOW_ENOUGH)

    process = start(killed_dir, *SLOW_ENOUGH)
    run_dir = wait_for_checkpoint(killed_dir, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert reference.wait(timeout=300) == 0, reference.communicate()[0][-3000:]

    client, run = only_run(killed_dir)
    assert run.info.status == "RUNNING"  # SIGKILL leaves no chance to say otherwise: resume will
    resumed = run_lossforge(killed_dir, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    client, run = only_run(killed_dir)  # the same run, no duplicate
    assert run.info.status == "FINISHED" and run.data.tags["lossforge.resumed"] == "true"
    steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "val/accuracy")]
    assert steps == [1, 2, 3, 4, 5, 6]
    _, uninterrupted = only_run(reference_dir)
    for key in ("test/accuracy", "test/loss", "test/nll"):
        assert run.data.metrics[key] == pytest.approx(uninterrupted.data.metrics[key], abs=1e-6), key


def test_sigterm_marks_the_run_killed_and_saves_a_checkpoint(tmp_path: Path) -> None:
    process = start(tmp_path, *SLOW_ENOUGH)
    run_dir = wait_for_checkpoint(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGTERM, output[-2000:]
    assert "stopped by SIGTERM during epoch" in output and f"python -m lossforge resume={run_dir}" in output
    _, run = only_run(tmp_path)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("KILLED", "killed")
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()


def test_secrets_in_the_environment_never_reach_mlflow(tmp_path: Path) -> None:
    secret = "fake-secret-4b1d9e"
    result = run_lossforge(
        tmp_path,
        *QUICK_RUN,
        "+note=${oc.env:MLFLOW_TRACKING_PASSWORD}",
        env={"MLFLOW_TRACKING_PASSWORD": secret, "MY_SERVICE_TOKEN": "another-secret-77"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _, run = only_run(tmp_path)
    assert run.data.params["note"] == "***"
    seen = [run.info.run_name, *run.data.params.values(), *run.data.tags.values()]
    artifacts = tmp_path / "outputs" / "mlartifacts"
    seen += [path.read_text(errors="ignore") for path in artifacts.rglob("*.yaml")]
    assert all(secret not in text and "another-secret-77" not in text for text in seen)
