"""`lossforge ui`: the MLflow dashboard on the store lossforge's runs went to, on 127.0.0.1.

The store is found the way training finds it (`--tracking-uri`, else `MLFLOW_TRACKING_URI`, else
`outputs/mlflow.db` under the current directory); the port is a free one unless `--port` says. It
prints the URL of the run `--run` names, else of the newest sweep or comparison (else the newest run, else
the experiment), in MLflow's model-training view, then serves until Ctrl-C. For a tracking server
(`http(s)://`) there is nothing to start: it prints the URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from lossforge.tracking.secrets import credentials_in_uri, redact_uri
from lossforge.tracking.store import check_reachable, resolve_tracking_uri
from lossforge.tracking.ui import TRAINING_VIEW, newest_page, run_page

__all__ = ["HOST", "TRAINING_VIEW", "main", "newest_page", "serve"]

HOST = "127.0.0.1"  # the dashboard is for this machine: MLflow accepts only local clients by default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossforge ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="the store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--port", type=int, help="the port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--experiment", default="lossforge", help="the experiment to open (default: lossforge)")
    parser.add_argument("--run", metavar="RUN_ID", help="open this run's page (default: the newest sweep or run)")
    args = parser.parse_args(argv)

    from mlflow import MlflowClient

    uri = resolve_tracking_uri(args.tracking_uri, base_dir=Path.cwd())
    if credentials_in_uri(uri):
        print(
            f"lossforge ui: error: the tracking URI {redact_uri(uri)} carries credentials; lossforge will not use "
            f"(nor print) it. Put them in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
            f"MLFLOW_TRACKING_TOKEN) and give the URI without them.",
            file=sys.stderr,
        )
        return 2
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        print(
            f"lossforge ui: no MLflow store at {uri} yet; train something first (python -m lossforge)", file=sys.stderr
        )
        return 1
    check_reachable(uri)  # a damaged store: one paragraph, not the server's traceback
    client = MlflowClient(uri)
    if args.run:
        from mlflow.exceptions import MlflowException

        try:
            page = run_page(client.get_run(args.run).info.experiment_id, args.run)
        except MlflowException:
            print(
                f"lossforge ui: no run {args.run!r} in {redact_uri(uri)}; leave out --run for the newest",
                file=sys.stderr,
            )
            return 2
    else:
        page = newest_page(client, args.experiment)
    if uri.startswith(("http://", "https://")):
        print(f"{uri.rstrip('/')}/#{page}")
        return 0
    if args.port is None:
        from lossforge.distributed.launch import free_port

        args.port = free_port(HOST)
    print(f"MLflow dashboard for {uri}: http://{HOST}:{args.port}/#{page}   (Ctrl-C stops it)", flush=True)
    server = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", HOST, "--workers", "1"]
    # MLflow's GenAI job runner starts worker processes the dashboard of training runs never needs.
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    return serve([*server, "--port", str(args.port)], environment)


STOP_GRACE_S = 10.0
"""How long the server may take to stop after SIGTERM before its process group is killed."""


def serve(command: list[str], environment: Mapping[str, str]) -> int:
    """Run the dashboard server until it ends or this process is stopped — by Ctrl-C, SIGTERM (a process
    manager, `kill`) or SIGHUP (its terminal closed) — and then stop it with every process it started.

    `mlflow ui` starts uvicorn, which holds the port; stopping only `mlflow ui` left uvicorn running,
    re-parented to init. So the server runs in a process group of its own (a new session: the terminal's
    Ctrl-C no longer reaches it directly), and each way of stopping this command stops that whole group:
    SIGTERM, then SIGKILL after [STOP_GRACE_S][lossforge.commands.ui.STOP_GRACE_S] seconds.
    """
    server = subprocess.Popen(command, env=dict(environment), start_new_session=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return server.wait()
    except KeyboardInterrupt:
        stop_group(server)
        return 0
    except _Stopped as stopped:
        stop_group(server)
        return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if server.poll() is None:  # any other way out of this function
            stop_group(server)


class _Stopped(Exception):
    """This command received SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_group(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left of it after
    [STOP_GRACE_S][lossforge.commands.ui.STOP_GRACE_S]."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, signum)
        except ProcessLookupError:  # the whole group is gone
            return
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.1)  # reaps the leader, which would otherwise linger as a zombie
            if not _group_alive(server.pid):
                return


def _group_alive(group: int) -> bool:
    """Whether any process of process group `group` is left."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
