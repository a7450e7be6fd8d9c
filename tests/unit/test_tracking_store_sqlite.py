"""``lossforge.tracking.store`` for SQLite stores: a new store is created under a file lock; a damaged one —
random bytes, truncated, half-created, at another schema version — is named in one paragraph that says how to
repair it. Every store here is a real SQLite file. (Commands end to end: ``tests/e2e/test_concurrency.py``.)"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from lossforge.tracking.store import (
    StoreDamagedError,
    check_reachable,
    lock_path,
    open_sqlite_store,
    store_state,
)


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> Path:
    """A copy of an intact store, at this MLflow's schema version."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, path)
    return path


def _execute(database: Path, statement: str) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(statement)
    connection.close()


def test_an_intact_store_is_ready_and_a_missing_or_empty_one_is_new(store: Path, tmp_path: Path) -> None:
    assert store_state(store).problem is None and not store_state(store).new
    assert store_state(tmp_path / "absent.db").new
    (tmp_path / "empty.db").touch()
    assert store_state(tmp_path / "empty.db").new


@pytest.mark.parametrize(
    ("damage", "expected", "upgradable"),
    [
        ("random bytes", "is not a SQLite database", False),
        ("truncated", "is truncated", False),
        ("no schema version", "is half-created: it has tables but no schema version", False),
        ("an older schema version", "has schema version 451aebb31d03, not MLflow", True),
        ("an unknown schema version", "has schema version 0123456789ab, unknown to MLflow", False),
    ],
)
def test_a_damaged_store_is_named_with_what_is_wrong_and_how_to_repair_it(
    store: Path, damage: str, expected: str, upgradable: bool
) -> None:
    if damage == "random bytes":
        store.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        store.write_bytes(store.read_bytes()[: store.stat().st_size // 3])
    elif damage == "no schema version":
        _execute(store, "DROP TABLE alembic_version")
    else:
        version = "451aebb31d03" if damage == "an older schema version" else "0123456789ab"
        _execute(store, f"UPDATE alembic_version SET version_num = '{version}'")
    before = store.read_bytes()
    state = store_state(store)
    assert state.problem is not None and expected in state.problem and state.upgradable == upgradable
    with pytest.raises(StoreDamagedError) as raised:
        check_reachable(f"sqlite:///{store}")  # what every command calls before it opens the store
    message = str(raised.value)
    assert isinstance(raised.value, ConnectionError)  # the command line prints it as one paragraph
    assert message.startswith(f"The MLflow store {store} {expected}") and "\n" not in message
    assert f"cp {store} {store}.bak" in message and "logger.tracking_uri=" in message and "--tracking-uri" in message
    assert ("mlflow db upgrade" in message) == upgradable
    assert store.read_bytes() == before  # checked read-only: nothing repaired behind the user's back


def test_a_new_store_waits_for_the_lock_then_is_created_once_and_ready(tmp_path: Path) -> None:
    database = tmp_path / "outputs" / "mlflow.db"
    database.parent.mkdir()
    # What a creation that failed before its first table leaves: only alembic's bookkeeping. Still a new store.
    _execute(database, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    assert store_state(database).new
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            open_sqlite_store(f"sqlite:///{database}")
        except BaseException as error:  # reported by the test's thread
            errors.append(error)

    with open(lock_path(database), "a") as held:  # another command creating the store holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        opener = threading.Thread(target=open_store)
        opener.start()
        time.sleep(1.0)
        assert opener.is_alive() and store_state(database).new  # it waits: no creation beside the other one
        fcntl.flock(held, fcntl.LOCK_UN)
    opener.join(timeout=120)
    assert not opener.is_alive() and not errors, errors
    state = store_state(database)
    assert not state.new and state.problem is None  # every migration applied


def test_other_stores_are_not_files_to_check() -> None:
    open_sqlite_store("sqlite://")  # in memory
    open_sqlite_store("postgresql://user@localhost/mlflow")
