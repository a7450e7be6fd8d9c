"""Start-up: how long the command line takes before it does anything, against the floor of its imports.

Each command runs ``--repeats`` times as a fresh process, the commands interleaved (one run of each, then
the next round), after one untimed warm-up round that fills the OS file cache; the table reports the
median and the minimum wall time (``time.perf_counter`` around ``subprocess.run``).

* floors: ``python -c pass``, ``python -c "import hydra"`` (what a command that only reads configs
  needs), ``python -c "import torch"``, ``python -c "import torch, lightning"``;
* ``python -m lossforge --help``, ``lossforge list`` and ``lossforge compare --help`` (the console script);
* ``python -m lossforge trainer.max_epochs=1 …`` on the default experiment (the 8×8 digits), run in a
  temporary directory with its own MLflow store: the whole command, and the time from the command to
  its first training step. The latter is taken by running the same command through a small wrapper that
  prints the wall-clock time when ``LossTask.training_step`` is first called, and nothing else.

The first training run in a fresh directory also creates the MLflow SQLite store (its tables and
migrations); ``--fresh-store`` runs every repetition in a new directory to include that,
the default reuses one directory per command, as repeated experiments do.

Usage::

    python benchmarks/startup.py                  # 5 rounds
    python benchmarks/startup.py --repeats 11 --fresh-store
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import OtherLoad, add_common_arguments, machine, median, ratio, wait_for_quiet, write_tables

VENV_BIN = Path(sys.executable).parent
TRAIN_OVERRIDES = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false"]

# Runs `python -m lossforge <arguments>` and prints the wall-clock time of the first training step.
FIRST_STEP_PROBE = """
import runpy, sys, time
from lossforge.training.module import LossTask
original = LossTask.training_step
def first_step(self, *arguments, **keywords):
    if not getattr(first_step, "seen", False):
        first_step.seen = True
        print(f"LOSSFORGE_FIRST_STEP {time.time():.6f}", file=sys.stderr, flush=True)
    return original(self, *arguments, **keywords)
LossTask.training_step = first_step
sys.argv = ["lossforge", *sys.argv[1:]]
runpy.run_module("lossforge", run_name="__main__", alter_sys=True)
"""


def run(command: list[str], cwd: Path) -> tuple[float, float | None]:
    """Wall time of ``command``, and seconds to its first training step if it printed one."""
    started_wall, started = time.time(), time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    first_step = None
    for line in done.stderr.splitlines():
        if line.startswith("LOSSFORGE_FIRST_STEP "):
            first_step = float(line.split()[1]) - started_wall
    return elapsed, first_step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each command (median ≥ 5)")
    parser.add_argument("--fresh-store", action="store_true", help="a new directory (and MLflow store) per run")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    python = sys.executable
    console_script = str(VENV_BIN / "lossforge")
    commands = {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import hydra"': [python, "-c", "import hydra"],
        'python -c "import torch"': [python, "-c", "import torch"],
        'python -c "import torch, lightning"  (floor)': [python, "-c", "import torch, lightning"],
        "python -m lossforge --help": [python, "-m", "lossforge", "--help"],
        "lossforge list": [console_script, "list"],
        "lossforge compare --help": [console_script, "compare", "--help"],
        "python -m lossforge trainer.max_epochs=1 (whole run)": [python, "-m", "lossforge", *TRAIN_OVERRIDES],
        "python -m lossforge trainer.max_epochs=1 → first training step": [
            python,
            "-c",
            FIRST_STEP_PROBE,
            *TRAIN_OVERRIDES,
        ],
    }
    training = {name for name in commands if "max_epochs" in name}
    scratch = Path(tempfile.mkdtemp(prefix="lossforge-startup-"))
    directories = {name: scratch / f"command{index}" for index, name in enumerate(commands)}
    for directory in directories.values():
        directory.mkdir()

    def directory_for(name: str, repeat: int) -> Path:
        if args.fresh_store and name in training:
            fresh = directories[name] / f"run{repeat}"
            fresh.mkdir(exist_ok=True)
            return fresh
        return directories[name]

    quiet = wait_for_quiet(args.max_wait)
    machine_before, started, load = machine(), time.perf_counter(), OtherLoad()
    for name, command in commands.items():  # warm-up: the file cache, and each directory's MLflow store
        run(command, directory_for(name, -1))
    times: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(args.repeats):
        for name, command in commands.items():
            elapsed, first_step = run(command, directory_for(name, repeat))
            times[name].append(first_step if first_step is not None else elapsed)
        print(f"round {repeat + 1}/{args.repeats}: " + ", ".join(f"{times[n][-1]:.2f}" for n in commands))

    floor = median(times['python -c "import torch, lightning"  (floor)'])
    hydra = median(times['python -c "import hydra"'])
    targets = {"lossforge list": "≤ 3× import hydra", "python -m lossforge --help": "≤ 4× import hydra"}
    rows = []
    for name in commands:
        seconds = median(times[name])
        row = [name, f"{seconds:.2f}", f"{min(times[name]):.2f}", ratio(seconds, floor), ratio(seconds, hydra)]
        rows.append([*row, targets.get(name, "")])
    columns = ["command", "median s", "min s", "vs torch+lightning", "vs import hydra", "target"]
    write_tables(
        "startup",
        [("Start-up, seconds (fresh process each run)", columns, rows)],
        out=args.out,
        notes=[
            f"Machine: {machine_before} ({quiet}); {load.note()}",
            f"{args.repeats} interleaved rounds after a warm-up round; "
            f"{'a fresh MLflow store per run' if args.fresh_store else 'one MLflow store per command, reused'}; "
            f"PYTHONPATH {'set' if os.environ.get('PYTHONPATH') else 'unset'}; "
            f"wall time {time.perf_counter() - started:.0f} s",
        ],
    )


if __name__ == "__main__":
    main()
