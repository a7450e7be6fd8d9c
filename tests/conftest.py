"""Shared fixtures. Loading this file also puts ``tests/`` on ``sys.path``, so test files in ``unit/`` and
``e2e/`` import the shared helpers with ``from helpers import …`` (plain functions and constants, among
them ``OWN_DISTRIBUTIONS`` and ``own_loss_names`` / ``own_miner_names``: which components this suite tests)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import LEAKY_VARIABLES, Site, refresh_registries
from mlflow import MlflowClient

from lossforge.tracking import DEFAULT_STORE


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test runs without the developer's ``LEAKY_VARIABLES``: an in-process run must not log to the
    server in ``MLFLOW_TRACKING_URI``, nor a plugin switch change which components are tested. Caches
    (``lossforge list``'s catalog) go to a fresh folder, never the developer's home."""
    for variable in LEAKY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A :class:`helpers.Site` on ``sys.path``: distributions installed into it are discovered like pip-installed
    ones. The registries are re-read when it appears and again when it goes, with its packages unimported."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    refresh_registries()
    fake = Site(root)
    yield fake
    refresh_registries()
    for name in list(sys.modules):
        if name.split(".")[0] in fake.packages:
            del sys.modules[name]


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with every schema migration applied, made once per session: migrating a new
    store takes 3-5 s, copying a migrated one milliseconds."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates the tables and runs the migrations
    return path


@pytest.fixture
def default_store(tmp_path: Path, migrated_store: Path) -> str:
    """A new, empty MLflow store where lossforge's default puts one for ``base_dir=tmp_path`` (and for the command
    run in ``tmp_path``): ``<tmp_path>/outputs/mlflow.db``. Returns its tracking URI."""
    path = tmp_path / DEFAULT_STORE
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_store, path)
    return f"sqlite:///{path}"
