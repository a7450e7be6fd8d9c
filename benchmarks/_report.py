"""What the benchmark scripts share: medians, a line describing the machine, and writing a table.

Each script prints its tables as markdown and writes them to ``benchmarks/results/<name>.md``, with the
exact command, the machine and the run's wall time above them (benchmarks/README.md quotes these files).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def add_common_arguments(parser: argparse.ArgumentParser, *, device: str | None = None, threads: bool = False) -> None:
    """``--out`` and ``--max-wait`` (every script), ``--device`` (help text ``device``) and ``--threads``."""
    if threads:
        parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    if device:
        parser.add_argument("--device", default="cpu", help=device)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the markdown tables")
    parser.add_argument("--max-wait", type=float, default=120, help="seconds to wait for other processes to calm")


def synchronize(device: object) -> None:
    """Wait for a GPU's queued work, so that wall-clock times include it (a no-op on the CPU)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> str:
    """One line: CPU, cores, torch version and threads, and the load average when called."""
    import torch

    threads = torch.get_num_threads()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores{gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"{threads} torch thread(s); load average {load_average()}"
    )


def _busy_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (``/proc/stat``), or NaN off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class OtherLoad:
    """How many cores *other* processes kept busy while a benchmark ran: the machine's busy CPU time minus
    this process's and its finished children's, over the wall time. Near 0 means the numbers are clean."""

    def __init__(self) -> None:
        self.busy, self.own, self.wall = _busy_seconds(), _own_seconds(), time.perf_counter()

    def cores(self) -> float:
        wall = time.perf_counter() - self.wall
        return max(0.0, (_busy_seconds() - self.busy) - (_own_seconds() - self.own)) / wall

    def note(self) -> str:
        return f"other processes kept {self.cores():.2f} of {os.cpu_count()} cores busy during the run"


def wait_for_quiet(max_wait: float = 120.0, threshold: float = 0.2) -> str:
    """Wait (at most ``max_wait`` s) until other processes use under ``threshold`` cores over 3 s; say how
    it went. On a shared machine this keeps a benchmark from starting in the middle of someone's tests."""
    deadline = time.perf_counter() + max_wait
    while True:
        probe = OtherLoad()
        time.sleep(3)
        cores = probe.cores()
        if cores < threshold or time.perf_counter() > deadline:
            return f"started when other processes used {cores:.2f} cores"


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def write_tables(
    name: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]]]],
    *,
    out: Path,
    notes: Sequence[str] = (),
) -> None:
    """Print ``tables`` (title, columns, rows) as markdown and write them to ``<out>/<name>.md``."""
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for title, columns, rows in tables:
        table = markdown_table(columns, rows)
        sections.append(f"**{title}**\n\n{table}" if title else table)
    header = [f"Command: `{command_line()}`  "] + [f"{note}  " for note in notes]
    text = "\n".join(header).rstrip() + "\n\n" + "\n\n".join(sections) + "\n"
    print(text)
    (out / f"{name}.md").write_text(text)


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}×" if reference > 0 else "–"
