"""Where a command writes: one directory per command, never shared with another command started in the same second.

`conf/config.yaml` names a run's directory `outputs/runs/<date>/<time>-<launch id>` and a sweep's
`outputs/multirun/<date>/<time>-<launch id>`. Hydra's `now` alone gives two commands started in the same
second the same directory; the launch id — six random hex digits, [new_launch_id][lossforge.run_dirs.new_launch_id] —
tells them apart.

The id is the value of the `lossforge.launch_id` resolver ([RESOLVER][lossforge.run_dirs.RESOLVER]), registered with
OmegaConf's cache like Hydra's own `now`: it is drawn once per composed config, in the process that launches the
command, and travels inside that config — Hydra copies the cache into each job's config of a sweep
(`load_sweep_config`), the parallel and submitit launchers pickle it with the config — so every job of a sweep
resolves the same directory, wherever it runs. [register_launch_id][lossforge.run_dirs.register_launch_id] is called
when the command line's module and the sweep callback's module are imported (every job of every launcher unpickles the
callback).

`hydra.run.dir=…` / `hydra.sweep.dir=…` on the command line replace the whole name, as before (resuming a
sweep in its old directory).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "lossforge.launch_id"
"""The resolver in `conf/config.yaml`'s `hydra.run.dir` and `hydra.sweep.dir`: `${lossforge.launch_id:}`."""
RUN_RECORD = "lossforge_run.json"
"""The run record a run writes in its directory (`lossforge.training.resume.RUN_RECORD`): its MLflow run id."""


def new_launch_id() -> str:
    """Six random hex digits: two commands started in the same second share a directory with a chance of one in
    16.7 million (random, not the process id: two machines submitting to one shared filesystem reuse ids).

    ```pycon
    >>> launch_id = new_launch_id()
    >>> len(launch_id), int(launch_id, 16) >= 0
    (6, True)

    ```
    """
    return secrets.token_hex(3)


def register_launch_id() -> None:
    """Register [RESOLVER][lossforge.run_dirs.RESOLVER] (idempotent). Cached per config, like Hydra's `now`: one value
    per command."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, new_launch_id, use_cache=True)


class DirectoryOfAnotherRun(ValueError):
    """`resume=<run id>` found a directory whose run record names another run."""


def check_directory_belongs(directory: Path, run_id: str) -> None:
    """Refuse to resume run `run_id` from `directory` unless the directory's run record names that run.

    Two commands that once shared a directory (before directories had a launch id) overwrote each other's
    record and checkpoints: resuming one from there would continue the other run, in its MLflow run.

    ```pycon
    >>> import tempfile
    >>> directory = Path(tempfile.mkdtemp())
    >>> _ = (directory / RUN_RECORD).write_text('{"run_id": "b2"}')
    >>> check_directory_belongs(directory, "b2")
    >>> check_directory_belongs(directory, "a1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lossforge.run_dirs.DirectoryOfAnotherRun: resume=a1: its directory ... belongs to run b2 ...

    ```
    """
    record = directory / RUN_RECORD
    recorded = json.loads(record.read_text()).get("run_id") if record.is_file() else None
    if recorded == run_id:
        return
    raise DirectoryOfAnotherRun(
        f"resume={run_id}: its directory {directory} belongs to run {recorded} ({record} says so), not to "
        f"{run_id}: another command wrote there after it (two commands started in the same second once shared "
        f"a directory), so its checkpoints are not this run's. Nothing was resumed. Resume run {recorded} with "
        f"resume={directory}, or start the configuration of run {run_id} again."
    )


@functools.cache  # read on every reservation of a piece: the kernel and the namespace do not change
def pid_space() -> str | None:
    """The space this process's id means something in: the running kernel (its boot id) and the PID namespace
    (a container has its own), on Linux; None elsewhere. Two processes with the same `pid_space` can tell
    whether the other is alive ([process_alive][lossforge.run_dirs.process_alive]); a host name alone cannot
    (two containers, or two machines, may share one).

    ```pycon
    >>> pid_space() is None or pid_space().count("/pid:[") == 1
    True

    ```
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host: it exists (one of another user counts) and is not a zombie
    (dead, not yet reaped by its parent). Used to find runs whose process died and launchers that are gone.

    ```pycon
    >>> process_alive(os.getpid())
    True

    ```
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): existing is all we can tell
