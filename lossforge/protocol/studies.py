"""The protocol's Optuna storage and its studies: created once before any worker starts, locked while a
worker reserves a piece, and refused when a re-run searches a different space.

The trials live in Optuna's own storage ([prepare_storage][lossforge.protocol.studies.prepare_storage]):
`outputs/tuning.db` (SQLite) by default, or any storage `--storage` names — PostgreSQL, or Optuna's journal file
for shared file systems — so `optuna.load_study`, `optuna.get_all_study_summaries` and optuna-dashboard read them,
and a killed comparison resumes with the trials it had.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shlex
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import optuna

from lossforge.tracking import redact_uri

log = logging.getLogger("lossforge.protocol")


SEARCH = "lossforge.search"
"""The study's user attribute that records what it searches (its space and direction): a re-run that
searches something else refuses to mix the two."""


def prepare_storage(url: str) -> str:
    """Create (or upgrade) the storage at `url` once, before any worker starts; return `url`.

    Optuna creates its tables on first use, and two processes doing so at once race (one fails on a table the
    other just made), so the SQLite file's schema is made here under a file lock beside it; a database server
    or a journal file is prepared the same way by the one process that starts the workers. A `tuning.db`
    in lossforge's old hand-written format (before Optuna's storage) is moved aside, with one line saying so.
    """
    from filelock import FileLock

    from lossforge.training.pruning import open_storage

    if url.startswith("journal:"):
        Path(url[len("journal:") :]).parent.mkdir(parents=True, exist_ok=True)
        open_storage(url)
        return url
    path = _sqlite_path(url)
    lock = FileLock(f"{path}.lock") if path is not None else contextlib.nullcontext()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        if path is not None and _is_old_trial_table(path):
            aside = _free_name(path.with_name(f"{path.stem}.before-optuna{path.suffix}"))
            path.rename(aside)
            log.warning("tune     %s holds trials in lossforge's old format: moved aside to %s", path, aside.name)
        try:
            optuna.storages.RDBStorage(url)  # creates the tables of a new storage
        except RuntimeError as error:  # a storage of an older Optuna: upgrade its schema, as `optuna storage upgrade`
            if "upgrade" not in str(error):
                raise
            optuna.storages.RDBStorage(url, skip_compatibility_check=True).upgrade()
            log.info("tune     upgraded the Optuna storage schema of %s", url)
    return url


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def _free_name(path: Path) -> Path:
    candidate, number = path, 1
    while candidate.exists():
        candidate, number = path.with_name(f"{path.stem}-{number}{path.suffix}"), number + 1
    return candidate


def _is_old_trial_table(path: Path) -> bool:
    """Whether `path` is lossforge's old `TrialStore` file: a `trials` table with a `study` column
    and none of Optuna's tables."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with closing(sqlite3.connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "trials" not in tables or "studies" in tables:
            return False
        columns = {row[1] for row in connection.execute("PRAGMA table_info(trials)")}
    return "study" in columns


def open_study(
    *,
    storage: str,
    study_name: str,
    maximize: bool,
    search: dict[str, Any],
    sampler: Callable[[int], optuna.samplers.BaseSampler],
    pruner: optuna.pruners.BasePruner,
    heartbeat: tuple[int, int] | None = None,
) -> optuna.Study:
    """The study `study_name` in `storage`, created if new; a study that searched something else
    (`search`: its space and direction, as JSON-able values) is refused, naming how to start afresh.

    `sampler` makes the sampler given how many trials the study already has: a seeded sampler of a resumed
    study must not start its random sequence again (it would repeat the first trials), so it is seeded with
    the seed plus that count ([seeded][lossforge.protocol.studies.seeded]) — the same resume gives the same
    trials again.
    """
    from lossforge.training.pruning import open_storage

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9: said once, here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        opened = open_storage(storage, heartbeat=heartbeat)
    study = optuna.create_study(
        storage=opened,
        study_name=study_name,
        direction="maximize" if maximize else "minimize",
        pruner=pruner,
        load_if_exists=True,
    )
    study.sampler = sampler(len(study.get_trials(deepcopy=False)))
    wanted = json.loads(json.dumps({**search, "direction": "maximize" if maximize else "minimize"}, sort_keys=True))
    recorded = study.user_attrs.get(SEARCH)
    if recorded is None:
        study.set_user_attr(SEARCH, wanted)
    elif recorded != wanted:
        changed = sorted(key for key in {*recorded, *wanted} if recorded.get(key) != wanted.get(key))
        raise ValueError(
            f"Study {study_name!r} in {redact_uri(storage)} searched a different space ({', '.join(changed)} "
            f"changed), and its trials cannot be mixed with the new ones. Start afresh under another name "
            f"(--name for a comparison, hydra.sweeper.study_name for a sweep), or delete it: "
            f"optuna delete-study --study-name {shlex.quote(study_name)} --storage {shlex.quote(_cli_url(storage))}"
        )
    return study


def seeded(seed: int | None, done: int) -> int | None:
    """The sampler seed of a study that already has `done` trials: `seed` for a new study.

    ```pycon
    >>> seeded(0, 0), seeded(0, 3), seeded(None, 3)
    (0, 3, None)

    ```
    """
    return None if seed is None else seed + done


def _cli_url(storage: str) -> str:
    return redact_uri(storage) if not storage.startswith("journal:") else storage[len("journal:") :]


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """Hold the study storage's lock: a file lock beside an SQLite or journal file, a PostgreSQL advisory
    lock on a database server; other databases have none (their budget may overshoot by a worker or two)."""
    from filelock import FileLock

    path = Path(url[len("journal:") :]) if url.startswith("journal:") else _sqlite_path(url)
    if path is not None:
        with FileLock(f"{path}.lock"):
            yield
    elif url.startswith("postgresql"):
        from sqlalchemy import text

        with _engine(url).connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY})
    else:
        yield


_ADVISORY_KEY = 0x10557F0E  # lossforge's tuning lock among a server's advisory locks


@functools.cache
def _engine(url: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
