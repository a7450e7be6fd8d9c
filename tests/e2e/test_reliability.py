"""Checkpoints, interrupts, full disks and how a run ended (docs/reliability.md): each promise on real training.

In-process runs (``train``/``fit_and_test``) where a fault must happen at a known step; subprocesses of
``python -m lossforge`` where a signal, an exit status or a mount is part of the promise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import QUICK_RUN, child_env, compose_config, default_store_runs, run_lossforge
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lossforge import distributed
from lossforge.registry import LOSSES
from lossforge.training.build import build
from lossforge.training.checkpoints import NoFiniteValidationError
from lossforge.training.run import fit_and_test, make_loaders, train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]

STEPS_PER_EPOCH = 20  # digits' training split at the default batch size


class UnlearnsAfterEpoch0(nn.Module):
    """Cross-entropy for the first epoch, then its negative (gradient ascent: f1 falls) plus a constant that grows
    every epoch: the validation loss rises, so ``val/loss`` would pick epoch 0 for ``best`` *and* for Lightning's
    ``save_last``, while the selection metric (f1) peaks in epoch 0 and the last epoch is the worst."""

    tasks = ("multiclass",)
    name = "unlearns_after_epoch_0"

    def __init__(self, *, reduction: str = "mean", fault: str = "unlearn") -> None:
        super().__init__()
        self.calls, self.fault = 0, fault

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls += int(self.training)
        epoch = (self.calls - 1) // STEPS_PER_EPOCH if self.training else self.calls // STEPS_PER_EPOCH
        loss = nn.functional.cross_entropy(logits, target)
        if epoch == 0 or self.calls <= STEPS_PER_EPOCH:
            return loss
        if self.fault == "error":
            raise RuntimeError("the plugin's loss failed in epoch 1")
        return -loss + 100.0 * epoch


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    if "unlearns_after_epoch_0" not in LOSSES.names():
        LOSSES.register("unlearns_after_epoch_0", UnlearnsAfterEpoch0)
    yield
    LOSSES.refresh()  # forget the in-process loss: later tests list and check the installed components only


def config(*overrides: str) -> DictConfig:
    cfg = compose_config("model.hidden=[16]", "trainer.enable_progress_bar=false", "optimizer.lr=0.01", *overrides)
    OmegaConf.set_struct(cfg, False)
    return cfg


def only_run(directory: Path) -> tuple[Any, Any]:
    client, (run,) = default_store_runs(directory)
    return client, run


def test_the_best_epoch_by_the_selection_metric_is_tested_and_last_ckpt_follows_every_epoch(tmp_path: Path) -> None:
    cfg = config("trainer.max_epochs=3")
    cfg.loss = {"name": "unlearns_after_epoch_0"}
    built = build(cfg)
    fitted = fit_and_test(
        cfg, built, make_loaders(cfg, built, distributed.Processes()), tmp_path, distributed.Processes()
    )
    folder = tmp_path / "checkpoints"
    best = torch.load(folder / "best.ckpt", weights_only=True)
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert (best["epoch"], last["epoch"]) == (0, 2)  # val/loss would have kept both at epoch 0
    assert fitted.tested_epoch == 0 and fitted.best_checkpoint == str(folder / "best.ckpt")
    tested = built.module.state_dict()  # the weights trainer.test ran with
    for key, value in best["state_dict"].items():
        assert torch.equal(tested[key], value), key
    assert any(not torch.equal(tested[key], value) for key, value in last["state_dict"].items())
    assert fitted.test_metrics["test/f1_macro"] > 0.3  # epoch 0's model, not the unlearned one
    assert not list(folder.glob(".*.partial"))  # atomic writes leave no temporary file behind


def test_each_way_a_run_ends_carries_its_outcome(tmp_path: Path) -> None:
    # finished: trained and tested; the tested epoch is recorded
    finished = config("trainer.max_epochs=2")
    finished.loss = {"name": "unlearns_after_epoch_0"}
    train(finished, base_dir=tmp_path, output_dir=tmp_path / "finished")
    # failed: a plugin's loss raises in epoch 1
    failed = config("trainer.max_epochs=2")
    failed.loss = {"name": "unlearns_after_epoch_0", "fault": "error"}
    with pytest.raises(RuntimeError, match="plugin's loss failed"):
        train(failed, base_dir=tmp_path, output_dir=tmp_path / "failed")
    # diverged: the NaN guard stops it
    diverged = config("trainer.max_epochs=2", "optimizer.lr=1e30", "dataset=diabetes", "loss=l2")
    with pytest.raises(FloatingPointError):
        train(diverged, base_dir=tmp_path, output_dir=tmp_path / "diverged")
    _, runs = default_store_runs(tmp_path)
    by_dir = {Path(run.data.tags["lossforge.output_dir"]).name: run for run in runs}
    expected = {
        "finished": ("finished", "FINISHED"),
        "failed": ("failed", "FAILED"),
        "diverged": ("diverged", "FAILED"),
    }
    for name, (outcome, status) in expected.items():
        run = by_dir[name]
        assert (run.data.tags["lossforge.outcome"], run.info.status) == (outcome, status), name
    assert by_dir["finished"].data.tags["lossforge.tested_epoch"] == "1"  # the first epoch, numbered as shown
    assert by_dir["finished"].data.tags["lossforge.pid"] == str(os.getpid())
    assert "plugin's loss failed" in by_dir["failed"].data.tags["lossforge.error"]


def test_a_selection_metric_never_finite_is_diverged_and_untested(tmp_path: Path) -> None:
    cfg = config("trainer.max_epochs=1", "dataset=diabetes", "loss=l2")
    built = build(cfg)
    loaders = make_loaders(cfg, built, distributed.Processes())

    class NeverFinite(type(built.module.spec)):  # type: ignore[misc]  # a selection metric never finite
        selection_metric = "never_finite"

    built.module.spec = NeverFinite()
    module_end = built.module.on_validation_epoch_end

    def log_nan() -> None:
        module_end()
        built.module.log("val/never_finite", float("nan"))

    built.module.on_validation_epoch_end = log_nan  # type: ignore[method-assign]
    with pytest.raises(NoFiniteValidationError, match="val/never_finite was never finite"):
        fit_and_test(cfg, built, loaders, tmp_path, distributed.Processes())
    assert NoFiniteValidationError.outcome == "diverged"


def start(cwd: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lossforge", "trainer.enable_progress_bar=false", *overrides],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A test run in the background (`pytest &`) inherits an ignored SIGINT, and so would the run: Ctrl-C
        # must reach it as from a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(cwd: Path, process: subprocess.Popen[str], pattern: str, timeout: float = 180) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((cwd / "outputs" / "runs").glob(pattern))
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.02)
    raise AssertionError(f"nothing matched {pattern}")


SLOW_ENOUGH = ["trainer.max_epochs=4", "model.hidden=[256,256]"]


def test_ctrl_c_says_how_to_resume_exits_130_and_the_resume_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    reference_dir, stopped_dir = tmp_path / "reference", tmp_path / "stopped"
    reference_dir.mkdir()
    stopped_dir.mkdir()
    reference = start(reference_dir, *SLOW_ENOUGH)
    process = start(stopped_dir, *SLOW_ENOUGH)
    run_dir = wait_for(stopped_dir, process, "*/*/checkpoints/last.ckpt").parent.parent
    time.sleep(0.3)  # into the next epoch: interrupted.ckpt is then a mid-epoch state, newer than last.ckpt
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]
    assert "stopped by Ctrl-C" in output and f"python -m lossforge resume={run_dir}" in output, output[-3000:]
    client, run = only_run(stopped_dir)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("KILLED", "killed")
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()
    assert reference.wait(timeout=300) == 0

    resumed = run_lossforge(stopped_dir, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = resumed.stdout + resumed.stderr  # said, not silently ignored
    assert "interrupted.ckpt was written in the middle of epoch" in said, said[-3000:]
    client, run = only_run(stopped_dir)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("FINISHED", "finished")
    steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "val/f1_macro")]
    assert steps == [1, 2, 3, 4]
    _, uninterrupted = only_run(reference_dir)
    assert run.data.tags["lossforge.tested_epoch"] == uninterrupted.data.tags["lossforge.tested_epoch"]
    for key in ("test/f1_macro", "test/loss", "test/nll"):
        assert run.data.metrics[key] == pytest.approx(uninterrupted.data.metrics[key], abs=1e-6), key


def test_resume_skips_a_truncated_last_ckpt_honours_max_epochs_and_refuses_other_overrides(tmp_path: Path) -> None:
    first = run_lossforge(tmp_path, *QUICK_RUN[1:], "trainer.max_epochs=2")
    assert first.returncode == 0, first.stderr[-3000:]
    client, run = only_run(tmp_path)
    run_dir = Path(run.data.tags["lossforge.output_dir"])
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # what a full disk left before writes were atomic

    refused = run_lossforge(tmp_path, f"resume={run_dir}", "seed=3", "loss=l1")
    assert refused.returncode == 1
    assert "these overrides would change it: seed=3 loss=l1" in refused.stderr, refused.stderr[-3000:]

    resumed = run_lossforge(tmp_path, f"resume={run_dir}", "trainer.max_epochs=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = resumed.stdout + resumed.stderr
    assert f"{last} is damaged" in said and "resuming from best.ckpt" in said, said[-3000:]
    client, run = only_run(tmp_path)
    assert run.data.tags["lossforge.resumed_max_epochs"] == "3" and run.data.params["trainer.max_epochs"] == "2"
    steps = [metric.step for metric in client.get_metric_history(run.info.run_id, "val/f1_macro")]
    assert steps == [1, 2, 3]
    assert torch.load(last, weights_only=True)["epoch"] == 2  # written whole again


def test_a_run_left_running_by_kill_9_is_marked_killed_by_the_next_run(tmp_path: Path) -> None:
    process = start(tmp_path, *SLOW_ENOUGH)
    wait_for(tmp_path, process, "*/*/checkpoints/last.ckpt")
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, killed = only_run(tmp_path)
    assert killed.info.status == "RUNNING"
    after = run_lossforge(tmp_path, *QUICK_RUN)
    assert after.returncode == 0, after.stderr[-3000:]
    _, runs = default_store_runs(tmp_path)
    by_id = {run.info.run_id: run for run in runs}
    killed = by_id.pop(killed.info.run_id)
    (finished,) = by_id.values()
    assert (killed.info.status, killed.data.tags["lossforge.outcome"]) == ("KILLED", "killed")
    assert f"process {process.pid}" in killed.data.tags["lossforge.error"]
    assert (finished.info.status, finished.data.tags["lossforge.outcome"]) == ("FINISHED", "finished")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2.5 MiB tmpfs (the tests run as root in CI): room for two checkpoints of a 256-256 MLP (1 MiB each, Adam
    state included), not for the third that an atomic write needs while the other two are still there."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    mount = tmp_path / "small_disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2560k", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_run_in_one_paragraph_and_keeps_what_was_recorded(
    tmp_path: Path, small_disk: Path
) -> None:
    run_dir = small_disk / "run"
    result = run_lossforge(tmp_path, "trainer.max_epochs=4", "model.hidden=[256,256]", f"hydra.run.dir={run_dir}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"The disk is full: writing {run_dir}/checkpoints/" in result.stderr, result.stderr[-3000:]
    assert f"no space left on the file system holding {run_dir}/checkpoints (" in result.stderr
    assert f"resume={run_dir}" in result.stderr
    assert "Traceback" not in result.stderr
    client, run = only_run(tmp_path)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("FAILED", "failed")
    assert "The disk is full" in run.data.tags["lossforge.error"]
    logged = [metric.step for metric in client.get_metric_history(run.info.run_id, "val/f1_macro")]
    assert logged and logged == list(range(1, len(logged) + 1))  # every epoch before the disk filled is kept
    kept = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)  # whole, not truncated
    assert kept["epoch"] + 1 in logged  # Lightning counts from 0, the steps from 1
    assert not list((run_dir / "checkpoints").glob(".*.partial"))


def test_a_run_whose_store_disk_fills_is_marked_failed_at_the_next_start(
    tmp_path: Path, small_disk: Path, migrated_store: Path
) -> None:
    store = small_disk / "mlflow.db"
    shutil.copyfile(migrated_store, store)
    store_option = f"logger.tracking_uri=sqlite:///{store}"
    process = start(tmp_path, *SLOW_ENOUGH, store_option)
    run_dir = wait_for(tmp_path, process, "*/*/checkpoints/last.ckpt").parent.parent
    filler = small_disk / "filler"
    with filler.open("wb") as fill, contextlib.suppress(OSError):  # until the store's disk is full
        while True:
            fill.write(b"\0" * 65536)
            fill.flush()
    output = process.communicate(timeout=180)[0]
    assert process.returncode == 1, output[-3000:]
    client = MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("lossforge").experiment_id])
    assert run.info.status == "RUNNING"  # it could not record its own end
    assert (run_dir / "lossforge_outcome.json").is_file()  # but noted it beside itself

    filler.unlink()
    after = run_lossforge(tmp_path, *QUICK_RUN, store_option)
    assert after.returncode == 0, after.stderr[-3000:]
    run = client.get_run(run.info.run_id)
    assert (run.info.status, run.data.tags["lossforge.outcome"]) == ("FAILED", "failed")
    assert (
        "full" in run.data.tags["lossforge.error"] and "recorded at the next start" in run.data.tags["lossforge.error"]
    )
