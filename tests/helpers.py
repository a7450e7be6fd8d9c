"""What several test files share: which components are lossforge's own, composed configs, fake plugin
distributions, the real command in a subprocess, the default MLflow store, a real server.

A plain module (not ``conftest.py``, which is not meant to be imported): ``tests/conftest.py`` puts ``tests/`` on
``sys.path``, so test files ``from helpers import …`` — also at import time, as ``pytest.mark.parametrize``
arguments need. Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from torch import nn

from lossforge.distributed import LAUNCH_VARIABLES, free_port
from lossforge.hydra_options import register_components
from lossforge.tracking import DEFAULT_STORE

#: Variables neither a test (the ``clean_environment`` fixture) nor a child lossforge process may take from the
#: developer's shell: a tracking URI would send test runs to a real server; plugin switches, tracebacks and
#: thread counts change what is tested.
LEAKY_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "LOSSFORGE_DISABLE_PLUGINS",
    "LOSSFORGE_BLOCK_PLUGINS",
    "LOSSFORGE_TRACEBACK",
    "OMP_NUM_THREADS",
    *LAUNCH_VARIABLES,  # a shell inside a SLURM allocation or torchrun would make every run look launched
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_JOB_NAME",
    "TORCHELASTIC_RUN_ID",
)
HEALTH_TIMEOUT_S = 90.0  # an MLflow server answers in about 5 s on an idle machine; generous for a loaded CI runner
#: The smallest real run: one epoch of a tiny MLP, for tests about what a run records rather than what it learns.
QUICK_RUN = ("trainer.max_epochs=1", "model.hidden=[8]", "trainer.enable_progress_bar=false")


# -- lossforge's own components ----------------------------------------------------------------------------
EXTRAS = "lossforge-extras"  # the example plugin this repository ships (plugins/lossforge-extras)
#: Whose components lossforge's suite tests: lossforge's own and its example plugin's. Any other installed
#: plugin belongs to its author, who tests it with ``lossforge.testing``; a contract it breaks, or a name it
#: adds to a listing, must not fail lossforge's suite.
OWN_DISTRIBUTIONS = ("lossforge", EXTRAS)
try:
    EXTRAS_VERSION: str | None = metadata.version(EXTRAS)
except metadata.PackageNotFoundError:
    EXTRAS_VERSION = None
needs_extras = pytest.mark.skipif(
    EXTRAS_VERSION is None, reason="the example plugin is not installed: `pip install -e plugins/lossforge-extras`"
)


def own_loss_names(pattern: str = "*") -> list[str]:
    """The registered losses matching ``pattern`` that one of ``OWN_DISTRIBUTIONS`` provides, sorted."""
    from lossforge.testing import loss_names  # here, so the subprocess helpers do not load the contract kit

    return sorted(name for owner in OWN_DISTRIBUTIONS for name in loss_names(pattern, distribution=owner))


def own_miner_names(pattern: str = "*") -> list[str]:
    """The registered miners matching ``pattern`` that one of ``OWN_DISTRIBUTIONS`` provides, sorted."""
    from lossforge.testing import miner_names

    return sorted(name for owner in OWN_DISTRIBUTIONS for name in miner_names(pattern, distribution=owner))


def compose_config(*overrides: str) -> DictConfig:
    """lossforge's config with ``overrides``, composed in-process as ``python -m lossforge`` composes it: every
    registered loss and miner is a typed option, and plugins' config folders are on the search path."""
    register_components(with_parameters=True)
    GlobalHydra.instance().clear()
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``LEAKY_VARIABLES``, unbuffered, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in LEAKY_VARIABLES}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_python(
    cwd: Path, *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python <arguments>`` in ``cwd`` with :func:`child_env`, output captured as text."""
    command = [sys.executable, *arguments]
    return subprocess.run(command, cwd=cwd, env=child_env(env), capture_output=True, text=True, timeout=timeout)


def run_lossforge(
    cwd: Path, *arguments: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m lossforge <arguments>`` in ``cwd``."""
    return run_python(cwd, "-m", "lossforge", *arguments, env=env, timeout=timeout)


def default_store_runs(cwd: Path) -> tuple[object, list]:
    """The MLflow client of the default store under ``cwd`` and every run of its ``lossforge`` experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd / DEFAULT_STORE}")
    experiment = client.get_experiment_by_name("lossforge")
    return client, client.search_runs([experiment.experiment_id])


def sweep_runs(cwd: Path) -> tuple[object, list]:
    """The parent run of the default store's sweep and its children."""
    _, runs = default_store_runs(cwd)
    (parent,) = [r for r in runs if r.data.tags.get("lossforge.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def tuple_sets(tuples: Sequence[object]) -> list[set[tuple[int, ...]]]:
    """Mined index tuples as sets: triplets ``(a, p, n)`` as one set, pairs ``(a1, p, a2, n)`` as the
    positive and the negative set — to compare miners' output regardless of order."""
    groups = [tuples[:2], tuples[2:]] if len(tuples) == 4 else [tuples]
    return [set(zip(*(index.tolist() for index in group), strict=True)) for group in groups]


# -- fake plugin distributions -----------------------------------------------------------------------------
class Site:
    """A folder on ``sys.path`` into which tests 'install' distributions by writing their files.

    Each fake plugin is a real distribution: a package and a ``<name>-<version>.dist-info`` folder (METADATA,
    entry_points.txt), which ``importlib.metadata`` finds exactly as it finds a pip-installed one. The
    ``site`` fixture (``conftest.py``) gives a test one, on ``sys.path`` for the test's duration.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.packages: list[str] = []

    def install(
        self,
        distribution: str,
        *,
        package: str,
        files: dict[str, str],
        entry_points: dict[str, dict[str, str]],
        version: str = "0.1.0",
    ) -> None:
        """Write ``package`` (``files`` relative to it, e.g. ``{"__init__.py": "..."}``) and its metadata."""
        for relative, text in {"__init__.py": "", **files}.items():
            path = self.root / package / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        dist_info = self.root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
        (dist_info / "entry_points.txt").write_text(
            "".join(
                f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
                for group, entries in entry_points.items()
            )
        )
        self.packages.append(package)


class ScaledL1(nn.Module):
    """A working third-party loss, as a plugin would write it (no lossforge import)."""

    tasks = ("regression",)

    def __init__(self, *, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.scale, self.reduction = scale, reduction

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.scale * (prediction - target).abs().mean()


#: The module a fake plugin ships :class:`ScaledL1` in.
GOOD_LOSS = f"import torch\nfrom torch import nn\n\n\n{inspect.getsource(ScaledL1)}"


def refresh_registries() -> None:
    """Make every registry re-read the entry points (after an install or a switch changed)."""
    from lossforge.registry import REGISTRIES

    for registry in REGISTRIES.values():
        registry.refresh()


def install_good(site: Site, distribution: str = "lf-test-good", package: str = "lf_test_good") -> None:
    """A plugin providing one working loss, ``scaled_l1``."""
    site.install(
        distribution,
        package=package,
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {"scaled_l1": f"{package}.losses:ScaledL1"}},
    )


# -- a real MLflow server on 127.0.0.1 ---------------------------------------------------------------------
@dataclass
class MlflowServer:
    """A running MLflow server: where it answers and where it writes its log."""

    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The log's last lines, without the requests for the UI's static files that would bury the errors."""
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log written)"
        return "\n".join([line for line in text.splitlines() if "/static-files/" not in line][-lines:])


@contextmanager
def serve_mlflow(args: Sequence[str], directory: Path) -> Iterator[MlflowServer]:
    """Run ``mlflow <args> --port <free port>`` from ``directory`` until the block ends (``args`` must bind
    ``--host 127.0.0.1``); see :func:`serve`."""
    with serve([sys.executable, "-m", "mlflow", *args, "--workers", "1"], directory, name=args[0]) as server:
        yield server


@contextmanager
def serve(
    command: Sequence[str],
    directory: Path,
    *,
    name: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[MlflowServer]:
    """Run ``<command> --port <port>`` (an MLflow server or ``lossforge ui``; a free port unless given) from
    ``directory``, with ``env`` added to its environment, until the block ends. Yields once ``/health``
    answers; fails with the server's log tail if it exits or stays silent. Afterwards the server's whole
    process group is stopped."""
    port = port or free_port()
    server = MlflowServer(url=f"http://127.0.0.1:{port}", log=directory / f"mlflow-{name}.log")
    # The GenAI job runner starts about seven huey worker processes; tracking needs none of them, and
    # without them the server is up in half the time on a two-core machine.
    env = child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})})
    command = [*command, "--port", str(port)]
    with server.log.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_healthy(server, process)
        yield server
    finally:
        _stop_process_group(process)


def _wait_until_healthy(server: MlflowServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"`{' '.join(map(str, process.args))}` exited with {process.returncode} before answering "
                f"{server.url}/health. Server log:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError, connection reset, timeout are all OSErrors)
            pass
        time.sleep(0.2)
    pytest.fail(f"MLflow did not answer {server.url}/health within {HEALTH_TIMEOUT_S:.0f} s. Log:\n{server.log_tail()}")


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (the CLI, uvicorn, any workers), SIGKILL what outlives a grace period."""
    for sig, grace_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            process.poll()  # reap the group leader: a zombie would keep the group "alive"
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
