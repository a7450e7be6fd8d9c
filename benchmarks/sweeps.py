"""An 8-job sweep with the parallel launcher vs the same sweep run sequentially, side by side.

Both run ``python -m lossforge -m seed=0,…,7 trainer.max_epochs=E model.hidden=[H,H]`` (the default
experiment: the lecture's MLP on the 8×8 digits), the parallel one with ``hydra/launcher=parallel``
(``lossforge.sweeps.parallel``: one worker per usable core, forked from a server that imported what a job needs
while the sweep set up; each job with ``cores // workers`` torch threads), the sequential one with Hydra's
basic launcher (one process, all cores for each job). Every run gets a fresh temporary directory as its
working directory, so each has its own MLflow store. Runs alternate (sequential, parallel, sequential, …);
the table reports medians.

Each configuration ``H:E`` is one pair of rows. Besides the total, each run is split by the moments its
output arrives: *before the first job* (imports, the MLflow store and the sweep's parent run; for the
parallel launcher, whichever ends later of that and its fork server's imports), *jobs* (first job's start
to last job's end), and *after the last job* (the comparison printed at the end, exiting).

More rows say what the machine allows, measured in the same run: a CPU-bound probe (a pure Python loop plus
single-threaded ``torch.matmul``) in one process alone and in two processes at once — their ratio is the
most that running two jobs at once can gain here — and the fork server's imports alone
(``import lossforge.sweeps.parallel_preload`` in a fresh interpreter), before which no parallel job can start.
From these, each configuration gets the most a parallel launcher with no cost of its own could reach here:
the sequential total over (those imports + the sequential job phase ÷ the probe's gain + the shorter of the
two *after* phases), and the same with the parallel run's measured job phase instead.

Usage::

    python benchmarks/sweeps.py                              # 512:20 and 64:150, 2 repeats
    python benchmarks/sweeps.py --configs 512:5 512:20 --repeats 3
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from _report import OtherLoad, add_common_arguments, machine, median, wait_for_quiet, write_tables

WORKERS = 2  # hydra.launcher.n_jobs given to the parallel sweep, and processes of the probe
RUN_SUMMARY = re.compile(r"\(run [0-9a-f]{32}\)$")  # "<run name>: test/accuracy 0.970 …  (run <id>)"
PROBE = """
import time
import torch
torch.set_num_threads(1)
start = time.perf_counter()
total = 0
for number in range(4_000_000):
    total += number
matrix = torch.randn(768, 768)
for _ in range(40):
    matrix @ matrix
print(time.perf_counter() - start)
"""


@dataclass
class Run:
    total: float
    first_job: float  # seconds from the command to the first job's first log line
    last_job_end: float  # … to the last job's summary

    @property
    def phases(self) -> tuple[float, float, float]:
        return self.first_job, self.last_job_end - self.first_job, self.total - self.last_job_end


def sweep(parallel: bool, hidden: int, epochs: int, jobs: int) -> Run:
    seeds = ",".join(str(seed) for seed in range(jobs))
    command = [sys.executable, "-m", "lossforge", "-m", f"seed={seeds}", f"trainer.max_epochs={epochs}"]
    command += [f"model.hidden=[{hidden},{hidden}]", "trainer.enable_progress_bar=false"]
    if parallel:
        command[4:4] = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={WORKERS}"]
    first_job = last_job_end = float("nan")
    with tempfile.TemporaryDirectory(prefix="lossforge-sweep-") as directory:
        start = time.perf_counter()
        child = subprocess.Popen(
            command,
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        output = []
        for line in child.stdout:  # timestamps by arrival: the jobs' own log lines have no common clock
            output.append(line)
            if "[lossforge][INFO] - data " in line and math.isnan(first_job):
                first_job = time.perf_counter() - start
            elif RUN_SUMMARY.search(line):  # a quiet sweep's one line per run (training.progress.summary_line)
                last_job_end = time.perf_counter() - start
        child.wait()
        total = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{''.join(output)[-2000:]}")
    return Run(total, first_job, last_job_end)


def phase(done: list[Run], index: int) -> float:
    """The median of one phase (0 before, 1 jobs, 2 after) over runs."""
    return median([run.phases[index] for run in done])


def preload() -> float:
    """Seconds from starting a fresh interpreter to its having imported what the parallel launcher's fork
    server imports (its exit, which the fork server never goes through, not counted)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", "import lossforge.sweeps.parallel_preload; print('imported', flush=True)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "imported":
        raise RuntimeError("import lossforge.sweeps.parallel_preload failed")
    seconds = time.perf_counter() - start
    child.kill()
    child.wait()
    return seconds


def probe(processes: int) -> float:
    """Median seconds of the probe when ``processes`` copies run at once."""
    children = [
        subprocess.Popen([sys.executable, "-c", PROBE], stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    return median([float(child.communicate()[0]) for child in children])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8, help="sweep jobs (seeds)")
    parser.add_argument(
        "--configs", nargs="+", default=["512:20", "64:150"], help="HIDDEN:EPOCHS per sweep (model.hidden, max_epochs)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each sweep (medians)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    configs = [tuple(int(part) for part in config.split(":")) for config in args.configs]

    quiet = wait_for_quiet(args.max_wait)
    machine_before, started, load = machine(), time.perf_counter(), OtherLoad()
    runs: dict[tuple[int, int, bool], list[Run]] = {(h, e, p): [] for h, e in configs for p in (False, True)}
    alone, together, imports = [], [], []
    for repeat in range(args.repeats):
        for hidden, epochs in configs:
            for parallel in (False, True):
                runs[hidden, epochs, parallel].append(sweep(parallel, hidden, epochs, args.jobs))
                print(
                    f"repeat {repeat + 1}: hidden {hidden}, {epochs} epochs, parallel={parallel}: "
                    f"{runs[hidden, epochs, parallel][-1]}",
                    flush=True,
                )
        alone.append(probe(1))
        together.append(probe(WORKERS))
        imports.append(preload())

    threads = max(1, (os.cpu_count() or 1) // WORKERS)
    capacity = WORKERS * median(alone) / median(together)
    rows, bounds = [], []
    for hidden, epochs in configs:
        sequential = median([run.total for run in runs[hidden, epochs, False]])
        for parallel in (False, True):
            done = runs[hidden, epochs, parallel]
            total = median([run.total for run in done])
            launcher = (
                f"parallel ({WORKERS} workers, {threads} thread per job)"
                if parallel
                else f"sequential ({os.cpu_count()} threads per job)"
            )
            rows.append(
                [
                    f"[{hidden},{hidden}], {epochs} epochs",
                    launcher,
                    f"{total:.1f}",
                    f"{min(run.total for run in done):.1f}",
                    " / ".join(f"{median([run.phases[index] for run in done]):.1f}" for index in range(3)),
                    f"{sequential / total:.2f}×",
                ]
            )
        sequential_runs, parallel_runs = runs[hidden, epochs, False], runs[hidden, epochs, True]
        sequential_jobs, parallel_jobs = phase(sequential_runs, 1), phase(parallel_runs, 1)
        sequential_after, parallel_after = phase(sequential_runs, 2), phase(parallel_runs, 2)
        after = min(sequential_after, parallel_after)  # the shorter end of the two launchers
        ideal = median(imports) + sequential_jobs / capacity + after  # no cost of its own; jobs at the probe's gain
        measured = median(imports) + parallel_jobs + after  # … with this run's parallel job phase
        name = f"[{hidden},{hidden}], {epochs} epochs"
        bounds.append(f"{name}: {sequential / ideal:.2f}× / {sequential / measured:.2f}×")
    rows.append(["CPU probe", "1 process", f"{median(alone):.2f}", f"{min(alone):.2f}", "–", "–"])
    rows.append(
        [
            "CPU probe",
            f"{WORKERS} processes at once (each)",
            f"{median(together):.2f}",
            f"{min(together):.2f}",
            "–",
            f"{capacity:.2f}× (the most {WORKERS} processes gain)",
        ]
    )
    rows.append(
        ["fork server's imports", "1 process", f"{median(imports):.2f}", f"{min(imports):.2f}", "–", "before any job"]
    )
    write_tables(
        "sweeps",
        [
            (
                f"{args.jobs}-job sweep on the digits, seconds",
                ["model.hidden, max_epochs", "launcher", "median s", "min s", "before / jobs / after s", "speed-up"],
                rows,
            )
        ],
        out=args.out,
        notes=[
            f"Machine: {machine_before} ({quiet}); {load.note()}",
            f"{args.repeats} alternating runs of each sweep; target: parallel ≥ 1.6× sequential; "
            f"wall time {time.perf_counter() - started:.0f} s",
            "The most a parallel launcher with no cost of its own could reach here — sequential total / (fork "
            "server's imports + sequential job phase ÷ probe gain + the shorter *after*) / the same with this "
            "run's parallel job phase: " + "; ".join(bounds),
        ],
    )


if __name__ == "__main__":
    main()
