"""Commands side by side (issue #27, items 5, 6, 12, 13): commands started in the same second on a new store each
keep their own directory and all finish; a damaged store is named in one paragraph by every command; a sweep
with a job that cannot run is refused before any job trains.

The races do not rely on luck: each command imports lossforge, says it is ready and waits for a file the test
creates once all are ready (a barrier), and Hydra's clock reads the same second in all of them (its ``now``
resolver reads ``hydra.core.utils.datetime``, frozen here), so they start "in the same second" every time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import QUICK_RUN, child_env, default_store_runs, run_lossforge, run_python

from lossforge.tracking import DEFAULT_STORE, SWEEP_RECORD

pytestmark = pytest.mark.slow

FROZEN = "2030-01-02/03-04-05"  # the second every command started below reads from Hydra's `now`
#: A command behind the barrier: argv[1] names it, the rest are lossforge's arguments.
BEHIND_BARRIER = """
import datetime, sys, time
from pathlib import Path

import hydra.core.utils


class FrozenClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2030, 1, 2, 3, 4, 5)


if __name__ == "__main__":  # not in the parallel launcher's fork server, which imports this file again
    hydra.core.utils.datetime = FrozenClock
    from lossforge.cli import main

    Path(f"ready-{sys.argv[1]}").touch()
    while not Path("go").exists():
        time.sleep(0.005)
    sys.argv = ["lossforge", *sys.argv[2:]]
    main()
"""


def together(cwd: Path, commands: dict[str, Sequence[str]], timeout: float = 600) -> dict[str, tuple[int, str]]:
    """Start ``commands`` (name → lossforge arguments) in ``cwd`` behind one barrier; each one's exit status
    and output (stdout and stderr) once all have ended."""
    script = cwd / "behind_barrier.py"
    script.write_text(BEHIND_BARRIER)
    children = {
        name: subprocess.Popen(
            [sys.executable, str(script), name, *arguments],
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, arguments in commands.items()
    }
    try:
        deadline = time.monotonic() + 180
        while not all((cwd / f"ready-{name}").exists() for name in commands):
            assert time.monotonic() < deadline, "the commands did not get ready within 180 s"
            assert all(child.poll() is None for child in children.values()), "a command ended before the barrier"
            time.sleep(0.05)
        (cwd / "go").touch()
        return {name: (child.wait(timeout=timeout), child.communicate()[0]) for name, child in children.items()}
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()


def test_two_runs_started_in_the_same_second_on_a_new_store_both_finish_in_their_own_directories(
    tmp_path: Path,
) -> None:
    assert not (tmp_path / DEFAULT_STORE).exists()  # a new store: both commands find no database
    ended = together(
        tmp_path, {name: ["loss=cross_entropy", f"seed={seed}", *QUICK_RUN] for seed, name in enumerate("ab")}
    )
    for name, (status, output) in ended.items():
        assert status == 0, f"{name}:\n{output[-3000:]}"
        assert "Traceback" not in output, f"{name}:\n{output[-3000:]}"
    directories = sorted((tmp_path / "outputs" / "runs").glob(f"{FROZEN}*"))
    assert len(directories) == 2, directories  # same second, two directories: <time>-<launch id>
    _, runs = default_store_runs(tmp_path)
    assert sorted(run.info.status for run in runs) == ["FINISHED", "FINISHED"]
    for directory in directories:  # each directory is its own run's, with its own checkpoints
        (run,) = [
            run
            for run in runs
            if run.info.run_id == json.loads((directory / "lossforge_run.json").read_text())["run_id"]
        ]
        assert Path(run.data.tags["lossforge.output_dir"]) == directory
        assert sorted(path.name for path in (directory / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]


def test_two_sweeps_started_in_the_same_second_keep_their_own_directories_parents_and_runs(tmp_path: Path) -> None:
    # One under the basic launcher, one under the parallel launcher, whose workers resolve the sweep directory in
    # processes of their own: they must see the launcher's (its launch id travels in the config).
    ended = together(
        tmp_path,
        {
            "basic": ["-m", "loss=l1,huber", "dataset=regression_outliers", *QUICK_RUN],
            "parallel": ["-m", "hydra/launcher=parallel", "seed=0,1", *QUICK_RUN],
        },
    )
    for name, (status, output) in ended.items():
        assert status == 0, f"{name}:\n{output[-3000:]}"
    sweep_directories = sorted((tmp_path / "outputs" / "multirun").glob(f"{FROZEN}*"))
    assert len(sweep_directories) == 2, sweep_directories
    _, runs = default_store_runs(tmp_path)
    parents = {run.info.run_id: run for run in runs if run.data.tags.get("lossforge.sweep") == "parent"}
    assert len(parents) == 2
    for directory in sweep_directories:
        parent = parents[json.loads((directory / SWEEP_RECORD).read_text())["parent_run_id"]]
        assert parent.info.status == "FINISHED" and parent.data.tags["lossforge.children"] == "2"
        assert parent.data.params["sweep_dir"] == str(directory.relative_to(tmp_path))
        children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert [child.info.status for child in children] == ["FINISHED", "FINISHED"]
        for child in children:  # every job ran in its own sweep's directory, under its own parent
            assert child.data.tags["hydra.sweep_dir"] == parent.data.params["sweep_dir"]
            job_directory = Path(child.data.tags["lossforge.output_dir"])
            assert job_directory == directory / child.data.tags["hydra.job_num"]
            assert (job_directory / "lossforge_run.json").is_file()
    assert sorted(len(list(directory.glob("[0-9]"))) for directory in sweep_directories) == [2, 2]


def _no_traceback_one_paragraph(status: int, output: str, store: Path) -> None:
    assert status != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    error = output[output.index("error: ") :]  # the paragraph, and the hint about LOSSFORGE_TRACEBACK
    assert str(store) in error and "Back it up" in error and "point the command at another store" in error, error
    assert len(error.strip().splitlines()) <= 2, error


def test_a_corrupt_store_is_named_in_one_paragraph_by_a_run_a_sweep_compare_and_ui(tmp_path: Path) -> None:
    store = tmp_path / DEFAULT_STORE
    store.parent.mkdir(parents=True)
    garbage = os.urandom(64 * 1024)
    store.write_bytes(garbage)
    commands = {
        "run": ["-m", "lossforge", *QUICK_RUN],
        "sweep": ["-m", "lossforge", "-m", "seed=0,1", *QUICK_RUN],
        "compare": ["-c", "from lossforge.cli import main; import sys; sys.argv = ['lossforge', 'compare']; main()"],
        "ui": ["-c", "from lossforge.cli import main; import sys; sys.argv = ['lossforge', 'ui']; main()"],
    }
    for name, arguments in commands.items():
        result = run_python(tmp_path, *arguments, timeout=300)
        output = result.stdout + result.stderr
        _no_traceback_one_paragraph(result.returncode, output, store)
        assert "is not a SQLite database" in output, f"{name}: {output[-2000:]}"
        assert "--tracking-uri" in output and "logger.tracking_uri=" in output
    assert store.read_bytes() == garbage  # left as it was, for the user to back up
    assert not (tmp_path / "outputs" / "multirun").exists()  # the sweep stopped before its launcher started


def test_a_half_migrated_store_gets_a_paragraph_on_how_to_repair_it(tmp_path: Path, default_store: str) -> None:
    # A migration interrupted after MLflow's first script: its tables are there, its version is the first one.
    # (Truncated and half-created stores: tests/unit/test_tracking_store.py.)
    store = tmp_path / DEFAULT_STORE
    with sqlite3.connect(store) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '451aebb31d03'")
    connection.close()
    result = run_lossforge(tmp_path, *QUICK_RUN, timeout=300)
    output = result.stdout + result.stderr
    _no_traceback_one_paragraph(result.returncode, output, store)
    assert "has schema version 451aebb31d03" in output and f"mlflow db upgrade sqlite:///{store}" in output, output


def test_a_sweep_with_a_job_that_cannot_run_is_refused_before_any_job_trains(tmp_path: Path) -> None:
    result = run_lossforge(
        tmp_path, "-m", "loss=l1,cross_entropy", "dataset=regression_outliers", "seed=0,1", *QUICK_RUN
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    refusal = result.stderr
    assert "2 of its 4 jobs cannot run" in refusal, refusal
    for job in ("job 2 (loss=cross_entropy", "job 3 (loss=cross_entropy"):
        assert job in refusal, refusal
    assert "(loss=l1" not in refusal  # the jobs that can run are not named
    assert "Loss 'cross_entropy' serves multiclass, but dataset 'regression_outliers' is a regression task" in refusal
    assert "Epoch" not in result.stdout and "mlflow   run" not in result.stdout + result.stderr  # nothing trained
    assert not (tmp_path / DEFAULT_STORE).exists() and not (tmp_path / "outputs" / "multirun").exists()
