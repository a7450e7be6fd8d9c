"""The terminal display: one line per epoch from a fake trainer, the quiet summary line, and when a run is quiet."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from helpers import compose_config

from lossforge.tasks import spec_for
from lossforge.training.progress import EpochLines, epoch_line, quiet_sweep, summary_line

EPOCH_LINE = re.compile(r"^epoch +\d+/\d+(  \S+ \S+)+  \(\d+\.\d s\)$")


def fake_trainer(*, epoch: int = 2, max_epochs: int = 20, global_zero: bool = True, bar: Any = None) -> Any:
    metrics = {
        "train/loss": torch.tensor(0.4123),
        "val/loss": torch.tensor(0.3978),
        "val/f1_macro": torch.tensor(0.9121),
        "val/accuracy": torch.tensor(0.95),
        "val/f1/0": torch.tensor(0.5),
    }
    return SimpleNamespace(
        callback_metrics=metrics,
        current_epoch=epoch,
        max_epochs=max_epochs,
        is_global_zero=global_zero,
        progress_bar_callback=bar,
    )


def module_for(task: str) -> Any:
    return SimpleNamespace(spec=spec_for(task))


def printed_epoch(callback: EpochLines, trainer: Any, capsys: pytest.CaptureFixture[str]) -> str:
    callback.on_train_epoch_start(trainer, module_for("multiclass"))
    callback.on_train_epoch_end(trainer, module_for("multiclass"))
    return capsys.readouterr().out


def test_an_epoch_line_shows_the_losses_and_the_selection_metric(capsys: pytest.CaptureFixture[str]) -> None:
    line = printed_epoch(EpochLines(), fake_trainer(), capsys).rstrip("\n")
    assert EPOCH_LINE.match(line), line
    assert line.startswith("epoch  3/20  train/loss 0.412  val/loss 0.398  val/f1_macro 0.912  (")
    assert "val/accuracy" not in line  # only the selection metric: the line stays short


@pytest.mark.parametrize(("task", "metric"), [("regression", "val/mae"), ("metric", "val/map_at_r")])
def test_the_selection_metric_is_the_task_s(task: str, metric: str, capsys: pytest.CaptureFixture[str]) -> None:
    trainer = fake_trainer()
    trainer.callback_metrics[metric] = torch.tensor(1.5)
    EpochLines().on_train_epoch_end(trainer, module_for(task))
    assert f"val/loss 0.398  {metric} 1.500  (" in capsys.readouterr().out


@pytest.mark.parametrize(
    "trainer, callback",
    [
        (fake_trainer(global_zero=False), EpochLines()),  # DDP: rank 0 prints for all
        (fake_trainer(bar=object()), EpochLines()),  # Lightning's bar is on: no second display
        (fake_trainer(), EpochLines(enabled=False)),  # verbose=false
    ],
    ids=["not-rank-zero", "lightning-bar", "quiet"],
)
def test_silent(trainer: Any, callback: EpochLines, capsys: pytest.CaptureFixture[str]) -> None:
    assert printed_epoch(callback, trainer, capsys) == ""


def test_a_missing_metric_is_left_out() -> None:
    line = epoch_line(0, 5, {"train/loss": 1.0}, keys=("train/loss", "val/loss"), seconds=0.5)
    assert line == "epoch 1/5  train/loss 1.000  (0.5 s)"


def test_the_summary_line_has_the_name_the_headline_test_metrics_and_the_run() -> None:
    metrics = {"test/accuracy": 0.9703, "test/loss": 0.1, "test/f1/3": 0.5}
    assert summary_line("cross_entropy-digits-seed0", metrics, "0af3") == (
        "cross_entropy-digits-seed0: test/accuracy 0.970  test/loss 0.100  (run 0af3)"
    )


@pytest.mark.parametrize(
    ("multirun", "several_jobs", "on_command_line", "quiet"),
    [
        (False, False, False, False),  # one run: epoch lines
        (True, False, False, False),  # `-m loss=l1`: one job, as one run
        (True, True, False, True),  # a sweep: one line per run
        (True, True, True, False),  # `-m ... verbose=true`: as asked
    ],
)
def test_a_sweep_of_several_jobs_is_quiet_unless_asked(
    multirun: bool, several_jobs: bool, on_command_line: bool, quiet: bool
) -> None:
    assert quiet_sweep(multirun=multirun, several_jobs=several_jobs, verbose_on_command_line=on_command_line) is quiet


def test_verbose_by_default_and_lightning_s_bar_off_in_every_trainer_config() -> None:
    assert compose_config().verbose is True
    for trainer in ("default", "cpu", "gpu", "ddp", "ddp_cpu"):
        assert compose_config(f"trainer={trainer}").trainer.enable_progress_bar is False
