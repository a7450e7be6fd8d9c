"""Hostile input, end to end (issue #27: 1-4, 10, 11, 14, 15): secrets never reach the store, the outputs or the
printed lines; a `_target_` that lossforge's configs do not use never runs, whatever route put it in the
composed config; credentials in a tracking URI are refused unprinted; a plugin that calls ``sys.exit`` at import
takes down nothing; a loss of the wrong shape is named with its package; an exploding loss ends ``diverged``;
``lossforge ui`` stopped by SIGTERM or SIGHUP leaves no server behind. Real commands in subprocesses, tiny data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import QUICK_RUN, Site, child_env, default_store_runs, run_lossforge, sweep_runs
from mlflow import MlflowClient

from lossforge.distributed import free_port

pytestmark = pytest.mark.slow


def files_containing(root: Path, value: str, *, skip_suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``value``."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.name.endswith(skip_suffixes) and value.encode() in path.read_bytes()
    ]


# -- 1, 2: secrets -----------------------------------------------------------------------------------------------
def test_secrets_reach_neither_the_store_nor_the_outputs_nor_the_terminal(tmp_path: Path) -> None:
    environment = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret-4f1c9e",  # interpolated into a sweep's overrides
        "DB_PASS": "q7x",  # short: redacted at its node, never as a substring
        "DEPLOY_PRIVATE_KEY": "private-key-88d0a1",
        "DB_PWD": "run-name-secret-5b",  # a run name read from the environment
        "MY_SERVICE_TOKEN": "token-typed-literally-e2",  # its value typed on the command line
    }
    result = run_lossforge(
        tmp_path,
        "-m",
        *QUICK_RUN,
        "+extra=${oc.env:AWS_SECRET_ACCESS_KEY}",
        "+short=${oc.env:DB_PASS}",
        "+endpoint=prefix-${oc.env:DEPLOY_PRIVATE_KEY}",
        "run_name=${oc.env:DB_PWD}",
        "+db_password=literal-password-9c",  # a secret-looking key typed literally
        f"+note={environment['MY_SERVICE_TOKEN']}",
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    parent, (child,) = sweep_runs(tmp_path)
    assert "+extra=***" in parent.data.params["overrides"], parent.data.params["overrides"]
    assert "+db_password=***" in parent.info.run_name
    assert child.info.run_name == "cross_entropy-digits-seed0"  # never named after the environment
    assert child.data.params["short"] == "***" and child.data.params["endpoint"] == "prefix-***"
    assert child.data.params["db_password"] == "***"
    store = [tmp_path / "outputs" / "mlflow.db", tmp_path / "outputs" / "mlartifacts"]
    for value in (*environment.values(), "literal-password-9c"):
        assert value not in printed, value
        found = [path for root in store for path in ([root] if root.is_file() else root.rglob("*"))]
        # Model weights are bytes: a 3-character value would match them by chance.
        leaked = [p for p in found if p.is_file() and not p.name.endswith(".ckpt") and value.encode() in p.read_bytes()]
        assert not leaked, (value, leaked)
    for name in ("AWS_SECRET_ACCESS_KEY", "DB_PASS", "DEPLOY_PRIVATE_KEY", "DB_PWD"):  # from the environment:
        assert not files_containing(tmp_path / "outputs", environment[name], skip_suffixes=(".ckpt",)), name


# -- 3: _target_ ---------------------------------------------------------------------------------------------------
PAYLOAD = "_target_: shutil.copyfile\n_args_: [{source}, {destination}]\n"


def test_a_target_outside_lossforges_configs_never_runs(tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("copied by a callback")
    by_override, by_config_dir = tmp_path / "by-override.txt", tmp_path / "by-config-dir.txt"
    callback = f"+hydra.callbacks.pwn={{_target_:shutil.copyfile,_args_:[{source},{by_override}]}}"
    direct = run_lossforge(tmp_path, callback, *QUICK_RUN)
    folder = tmp_path / "configs" / "extra"
    folder.mkdir(parents=True)
    (folder / "pwn.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    pwn:\n"
        + "".join(f"      {line}\n" for line in PAYLOAD.format(source=source, destination=by_config_dir).splitlines())
    )
    via_file = run_lossforge(tmp_path, "-m", "--config-dir", str(tmp_path / "configs"), "+extra=pwn", *QUICK_RUN)
    for result, destination in ((direct, by_override), (via_file, by_config_dir)):
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        assert "hydra.callbacks.pwn._target_='shutil.copyfile'" in result.stderr
        assert "defaults:" in result.stderr and "LOSSFORGE_ALLOW_TARGETS=1" in result.stderr
        assert not destination.exists(), "the callback ran"
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # refused before anything was recorded


# -- 4: credentials in a tracking URI --------------------------------------------------------------------------------
def test_credentials_in_a_tracking_uri_are_refused_without_being_echoed(tmp_path: Path) -> None:
    uri = "http://alice:pw-5e2f0c@127.0.0.1:9"
    run = run_lossforge(tmp_path, f"logger.tracking_uri={uri}", *QUICK_RUN)
    ui = run_lossforge(tmp_path, "ui", "--tracking-uri", uri)
    for result in (run, ui):
        printed = result.stdout + result.stderr
        assert result.returncode == 2, printed[-2000:]
        assert "MLFLOW_TRACKING_USERNAME" in printed and "MLFLOW_TRACKING_PASSWORD" in printed
        assert "http://***@127.0.0.1:9" in printed
        assert "pw-5e2f0c" not in printed and "alice" not in printed
    assert not files_containing(tmp_path, "pw-5e2f0c")


# -- 10, 11: hostile plugins -------------------------------------------------------------------------------------------
PER_SAMPLE_LOSS = """
from torch import nn


class PerSample(nn.Module):
    tasks = ("multiclass",)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, target):
        return nn.functional.cross_entropy(logits, target, reduction="none")  # forgot to reduce
"""


@pytest.fixture
def hostile_site(tmp_path: Path) -> dict[str, str]:
    """Three plugins on PYTHONPATH: one calls ``sys.exit(3)`` when imported, one returns a per-sample loss, one
    registers ``l1`` as lossforge does. Returns the environment that installs them."""
    site = Site(tmp_path / "site")
    site.root.mkdir()
    site.install(
        "exits-at-import",
        package="exits_at_import",
        files={"losses.py": "import sys\nsys.exit(3)\n"},
        entry_points={"lossforge.losses": {"quits": "exits_at_import.losses:Quits"}},
    )
    site.install(
        "per-sample-loss",
        package="per_sample_loss",
        files={"losses.py": PER_SAMPLE_LOSS},
        entry_points={"lossforge.losses": {"per_sample": "per_sample_loss.losses:PerSample"}},
    )
    site.install(
        "another-l1",
        package="another_l1",
        files={"losses.py": PER_SAMPLE_LOSS},
        entry_points={"lossforge.losses": {"l1": "another_l1.losses:PerSample"}},
    )
    return {"PYTHONPATH": os.pathsep.join([str(site.root), os.environ.get("PYTHONPATH", "")])}


def test_a_plugin_that_exits_or_misbehaves_takes_down_nothing_and_is_named(
    tmp_path: Path, hostile_site: dict[str, str]
) -> None:
    listing = run_lossforge(tmp_path, "list", env=hostile_site)
    assert listing.returncode == 1, listing.stderr[-2000:]  # a plugin failed to load: said, not fatal
    assert "SystemExit: the plugin called sys.exit(3)" in listing.stdout
    assert "LOSSFORGE_BLOCK_PLUGINS=exits-at-import" in listing.stdout
    assert "cross_entropy" in listing.stdout  # the others are listed

    ambiguous = run_lossforge(tmp_path, "loss=l1", "dataset=regression_outliers", *QUICK_RUN, env=hostile_site)
    assert ambiguous.returncode == 2, ambiguous.stderr[-2000:]
    assert "registered by more than one package" in ambiguous.stderr
    assert "'lossforge:l1'" in ambiguous.stderr and "'another-l1:l1'" in ambiguous.stderr
    assert "Did you mean" not in ambiguous.stderr

    # Past every plugin's import (sys.exit isolated) and into training, where the per-sample loss is named.
    wrong_shape = run_lossforge(tmp_path, "loss=per_sample", *QUICK_RUN, env=hostile_site)
    assert wrong_shape.returncode == 1, wrong_shape.stderr[-2000:]
    assert "loss 'per_sample' (package per-sample-loss==0.1.0) returned a tensor of shape" in wrong_shape.stderr
    assert "grad can be implicitly created" not in wrong_shape.stderr


# -- 14: out-of-range numbers, an exploding loss -----------------------------------------------------------------------
def test_an_exploding_loss_stops_the_run_as_diverged(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "optimizer.lr=1e30", "trainer.max_epochs=3", *QUICK_RUN[1:])
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "The cross_entropy loss diverged" in result.stderr and "optimizer.lr=1e+30" in result.stderr
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags["lossforge.outcome"] == "diverged"
    assert (
        len(
            MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_metric_history(
                run.info.run_id, "train/loss"
            )
        )
        < 3
    )  # stopped before its last epoch


def test_a_misspelt_setting_is_named_before_anything_runs(tmp_path: Path) -> None:
    result = run_lossforge(tmp_path, "trainer.max_epoch=3", "seed=-1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Did you mean trainer.max_epochs?" in result.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


# -- 15: lossforge ui stops its server ------------------------------------------------------------------------------
def _processes_mentioning(text: str) -> list[int]:
    """Live (not zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in command and state != "Z":
            found.append(int(entry.name))
    return found


def _port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port``: no process listens there. SO_REUSEADDR, as servers set it,
    so that the probe's own /health connections, left in TIME_WAIT, do not count."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the server's processes in /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_lossforge_ui_stopped_by_a_signal_stops_its_server(tmp_path: Path, default_store: str, stop: int) -> None:
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "lossforge", "ui", "--port", str(port)],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # as under a process manager: the signal goes to `lossforge ui` alone
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.5)
        assert len(_processes_mentioning(f"--port {port}")) >= 2  # lossforge ui and mlflow ui (and uvicorn)
        ui.send_signal(stop)
        status = ui.wait(timeout=60)
        deadline = time.monotonic() + 15
        while (_processes_mentioning(f"--port {port}") or not _port_is_free(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _processes_mentioning(f"--port {port}"), "a server process was left behind"
        assert _port_is_free(port)
        assert status == 128 + stop  # said how it ended
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
        for pid in _processes_mentioning(f"--port {port}"):
            os.kill(pid, signal.SIGKILL)
