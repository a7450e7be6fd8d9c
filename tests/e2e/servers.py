"""Real servers for the end-to-end tests, started and stopped by the tests themselves: a single-node SLURM
cluster (munged, slurmctld, slurmd), a throwaway PostgreSQL cluster, and a team MLflow tracking server on
it with MLflow's basic-auth app.

Plain functions and context managers; ``tests/e2e/conftest.py`` wraps them in session-scoped fixtures. Everything
listens on 127.0.0.1 on free ports, keeps its state in a temporary directory, and is stopped (whole process
groups, and any SLURM job still running) when its block ends. ``missing_*`` say which binaries a machine
lacks, so that a test can be skipped with that reason.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from helpers import MlflowServer, serve

from lossforge.distributed import free_port

SLURM_BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "srun", "sbatch", "squeue", "sinfo", "scancel")
POSTGRES_BINARIES = ("initdb", "pg_ctl")
START_TIMEOUT_S = 60.0  # each daemon is up in about a second on an idle machine; generous for a loaded runner
STOP_TIMEOUT_S = 30.0


# -- which binaries a machine lacks -------------------------------------------------------------------------
def missing_slurm() -> str | None:
    """Why the SLURM tests cannot run here, or None: Debian's ``slurm-wlm`` and ``munge`` missing, or not root
    (slurmd starts each job as its user)."""
    absent = [name for name in SLURM_BINARIES if shutil.which(name) is None]
    if absent:
        return f"SLURM is not installed ({', '.join(absent)} not found): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the single-node SLURM cluster needs root: slurmd starts every job as the user who submitted it"
    return None


def postgres_binary(name: str) -> str | None:
    """``name`` (``initdb``, ``pg_ctl``) on ``PATH``, else from Debian's ``/usr/lib/postgresql/<version>/bin``,
    which the ``postgresql`` package does not put on ``PATH``; the newest version wins."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(Path(path).parts[4]))
    return candidates[-1] if candidates else None


def missing_postgres() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None."""
    absent = [name for name in POSTGRES_BINARIES if postgres_binary(name) is None]
    if absent:
        return f"PostgreSQL is not installed ({', '.join(absent)} not found): apt-get install postgresql"
    for module, package in (("psycopg2", "psycopg2-binary"), ("flask_wtf", "mlflow[auth]")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is missing: pip install -e '.[test]' (it installs {package})"
    return None


# -- processes ------------------------------------------------------------------------------------------------
def start_daemon(command: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``command`` in the foreground of its own session (so its whole process group can be stopped), output to
    ``log``."""
    with log.open("ab") as log_file:
        return subprocess.Popen(
            list(command), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )


def stop_group(process: subprocess.Popen[bytes], grace_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM ``process``'s process group, SIGKILL whatever outlives ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            process.poll()  # reap the leader: a zombie keeps its group alive
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def wait_for(condition: object, what: str, timeout_s: float, logs: Sequence[Path] = ()) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` and the logs' tails after ``timeout_s``."""
    import pytest

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout_s:.0f} s.\n" + "\n".join(tail(log) for log in logs))


def tail(log: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of ``log``, headed by its name."""
    text = log.read_text(errors="replace") if log.exists() else "(not written)"
    return f"--- {log.name} ---\n" + "\n".join(text.splitlines()[-lines:])


# -- SLURM ----------------------------------------------------------------------------------------------------
@dataclass
class SlurmCluster:
    """A running single-node SLURM cluster: its ``slurm.conf`` (clients find it through ``SLURM_CONF``), node,
    partition and logs."""

    conf: Path
    node: str
    cpus: int
    partition: str
    logs: list[Path]

    @property
    def env(self) -> dict[str, str]:
        """What a client (``srun``, ``sbatch``, submitit) needs in its environment to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def command(self, *arguments: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A SLURM client command (``squeue``, ``scancel``, …) against this cluster."""
        return subprocess.run(
            list(arguments), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout
        )

    def jobs(self) -> dict[str, str]:
        """Every job the controller still knows: job id → state (``PENDING``, ``RUNNING``, …)."""
        listing = self.command("squeue", "--noheader", "--format=%i %T").stdout
        return dict(line.split() for line in listing.splitlines() if line.strip())

    def log_tails(self) -> str:
        return "\n".join(tail(log) for log in self.logs)


def node_line(node: str) -> str:
    """The ``NodeName=`` line for this machine as slurmd itself detects it (``slurmd -C``: CPUs, sockets,
    cores, threads, memory), named ``node`` and reached on 127.0.0.1."""
    detected = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30, check=True).stdout
    fields = [word for word in detected.splitlines()[0].split() if not word.startswith("NodeName=")]
    return " ".join([f"NodeName={node}", "NodeAddr=127.0.0.1", *fields, "State=UNKNOWN"])


def slurm_conf(directory: Path, *, node: str, munge_socket: Path) -> str:
    """A minimal ``slurm.conf``: one node (this machine), one partition, no cgroups, no accounting, every
    state and spool file under ``directory``, free ports (so no state is shared with another cluster)."""
    lines = [
        "ClusterName=lossforge-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        "SlurmUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={directory / 'state'}",
        f"SlurmdSpoolDir={directory / 'spool'}",
        f"SlurmctldPidFile={directory / 'slurmctld.pid'}",
        f"SlurmdPidFile={directory / 'slurmd.pid'}",
        f"SlurmctldLogFile={directory / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={directory / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",  # no cgroup plugins: works in containers
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "InactiveLimit=0",
        "KillWait=10",  # scancel: SIGTERM, then SIGKILL 10 s later — time for a run to mark itself KILLED
        "MinJobAge=300",  # finished jobs stay in squeue's memory for 5 min
        node_line(node),
        f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def slurm_cluster(directory: Path) -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd for this machine, configured and kept under ``directory``; yields once the
    node is idle. Afterwards every job is cancelled and every process the cluster started is stopped."""
    node = socket.gethostname().split(".")[0]
    for sub in ("munge", "state", "spool", "log"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "munge").chmod(0o700)
    munge_key, munge_socket = directory / "munge" / "munge.key", directory / "munge" / "munge.socket"
    subprocess.run(["mungekey", "--create", f"--keyfile={munge_key}"], check=True, capture_output=True, timeout=30)
    conf = directory / "slurm.conf"
    conf.write_text(slurm_conf(directory, node=node, munge_socket=munge_socket))
    log_dir = directory / "log"
    cluster = SlurmCluster(
        conf=conf,
        node=node,
        cpus=os.cpu_count() or 1,
        partition="debug",
        logs=[log_dir / name for name in ("munged.log", "slurmctld.log", "slurmd.log", "daemons.out")],
    )
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        daemons.append(
            start_daemon(
                [
                    "munged",
                    "--foreground",
                    "--force",  # as root, in a directory munged would otherwise call insecure
                    f"--socket={munge_socket}",
                    f"--key-file={munge_key}",
                    f"--log-file={log_dir / 'munged.log'}",
                    f"--pid-file={directory / 'munge' / 'munged.pid'}",
                    f"--seed-file={directory / 'munge' / 'munged.seed'}",
                ],
                log_dir / "daemons.out",
            )
        )
        wait_for(munge_socket.exists, "munged did not create its socket", START_TIMEOUT_S, cluster.logs)
        env = {**os.environ, **cluster.env}
        daemons.append(start_daemon(["slurmctld", "-D", "-i", "-f", str(conf)], log_dir / "daemons.out", env))
        daemons.append(start_daemon(["slurmd", "-D", "-f", str(conf), "-N", node], log_dir / "daemons.out", env))

        def idle() -> bool:
            for daemon in daemons:
                if daemon.poll() is not None:
                    import pytest

                    pytest.fail(f"`{' '.join(map(str, daemon.args))}` exited early.\n{cluster.log_tails()}")
            states = cluster.command("sinfo", "--noheader", "--format=%T").stdout.split()
            return states == ["idle"]

        wait_for(idle, f"node {node} did not become idle", START_TIMEOUT_S, cluster.logs)
        yield cluster
    finally:
        _cancel_all_jobs(cluster)
        for daemon in reversed(daemons):  # slurmd, slurmctld, munged
            stop_group(daemon)
        _kill_leftover_job_processes(conf)


def _cancel_all_jobs(cluster: SlurmCluster) -> None:
    """scancel every job of this cluster and wait (bounded) until the controller has none running."""
    try:
        cluster.command("scancel", f"--user={pwd.getpwuid(os.getuid()).pw_name}")
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING"} & set(cluster.jobs().values()):
                return
            time.sleep(0.5)
    except (OSError, subprocess.SubprocessError, ValueError):  # the controller is gone: the sweep below stops them
        pass


def _kill_leftover_job_processes(conf: Path) -> None:
    """Processes of this cluster's jobs that outlived it (slurmstepd detaches from slurmd), found by the
    ``SLURM_CONF`` in their environment — only this cluster's, never another's."""
    own = str(conf)
    leftovers = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.pid != os.getpid() and process.environ().get("SLURM_CONF") == own:
                if "SLURM_JOB_ID" in process.environ():
                    leftovers.append(process)
        except (psutil.Error, OSError):
            continue
    for process in leftovers:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(leftovers, timeout=10)


# -- PostgreSQL -------------------------------------------------------------------------------------------------
@dataclass
class PostgresCluster:
    """A running throwaway PostgreSQL cluster on 127.0.0.1: where it listens and the superuser's credentials."""

    port: int
    user: str
    password: str = field(repr=False)
    log: Path

    def uri(self, database: str) -> str:
        """A SQLAlchemy URI for ``database`` through psycopg2 (SQLAlchemy 2.1's plain ``postgresql://`` means
        psycopg 3)."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


def _postgres_owner() -> str | None:
    """The unprivileged account that runs PostgreSQL when the tests run as root (it refuses root): Debian's
    ``postgres``, else ``nobody``; None when not root (then the current user runs it)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, but neither user 'postgres' nor 'nobody' exists to run PostgreSQL")


@contextmanager
def postgres_cluster(directory: Path) -> Iterator[PostgresCluster]:
    """``initdb`` + ``pg_ctl start`` on 127.0.0.1 and a free port, password authentication (SCRAM) for TCP;
    stopped and deleted afterwards. As root the cluster belongs to an unprivileged user and lives in a private
    temporary directory of its own (``directory``, under pytest's root-only tree, is out of its reach); the
    server's log is copied to ``directory`` on the way out."""
    owner = _postgres_owner()
    as_owner = ["runuser", "-u", owner, "--"] if owner else []
    home = Path(tempfile.mkdtemp(prefix="lossforge-postgres-"))
    cluster = PostgresCluster(
        port=free_port(), user="lossforge", password=secrets.token_urlsafe(16), log=home / "pg.log"
    )
    data = home / "data"
    pg_ctl = [*as_owner, postgres_binary("pg_ctl") or "pg_ctl", "--pgdata", str(data)]
    try:
        (home / "pwfile").write_text(cluster.password + "\n")
        if owner:
            record = pwd.getpwnam(owner)
            for path in (home, home / "pwfile"):
                os.chown(path, record.pw_uid, record.pw_gid)
        initdb = [postgres_binary("initdb") or "initdb", "--pgdata", str(data), "--username", cluster.user]
        initdb += ["--pwfile", str(home / "pwfile"), "--auth-host=scram-sha-256", "--auth-local=trust"]
        subprocess.run([*as_owner, *initdb, "--no-sync"], check=True, capture_output=True, timeout=120, cwd=home)
        options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {home} -c fsync=off"
        started = subprocess.run(
            [*pg_ctl, "--log", str(cluster.log), "--wait", f"--timeout={START_TIMEOUT_S:.0f}", "-o", options, "start"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
            cwd=home,
        )
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{tail(cluster.log)}")
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*pg_ctl, "--mode=fast", "--wait", f"--timeout={STOP_TIMEOUT_S:.0f}", "stop"],
                capture_output=True,
                timeout=STOP_TIMEOUT_S + 30,
                cwd=home,
            )
        if cluster.log.exists():
            shutil.copyfile(cluster.log, directory / "postgres.log")
        shutil.rmtree(home, ignore_errors=True)


# -- a team MLflow server: PostgreSQL backend, basic auth ---------------------------------------------------------
@dataclass
class AuthServer:
    """``mlflow server --app-name basic-auth`` on PostgreSQL, restartable on the same port (a run that lost it
    finds it again at the same URL). ``admin`` owns the server; tests log as a user they add."""

    command: list[str]
    directory: Path
    port: int
    env: dict[str, str] = field(repr=False)
    admin: tuple[str, str] = field(repr=False)
    _running: ExitStack | None = field(default=None, repr=False)
    server: MlflowServer | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it (again); returns once ``/health`` answers."""
        assert self._running is None, "the server is already running"
        self.starts += 1
        stack = ExitStack()
        name = "basic-auth" if self.starts == 1 else f"basic-auth-{self.starts}"
        self.server = stack.enter_context(serve(self.command, self.directory, name=name, port=self.port, env=self.env))
        self._running = stack

    def stop(self) -> None:
        """Stop its whole process group (uvicorn and its worker)."""
        if self._running is not None:
            self._running.close()
            self._running = None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server down for the block, up again (same URL, same store) after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def log_tail(self) -> str:
        return self.server.log_tail() if self.server else "(never started)"

    def request(self, endpoint: str, body: dict[str, object] | None = None, *, user: tuple[str, str]) -> object:
        """``GET`` (or ``POST`` ``body``) ``/api/2.0/<endpoint>`` as ``user`` (name, password); the JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        token = b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
        request = urllib.request.Request(f"{self.url}/api/2.0/{endpoint}", data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def add_user(self, name: str, password: str) -> None:
        """A new (non-admin) user: it may create experiments, and manages the ones it creates."""
        self.request("mlflow/users/create", {"username": name, "password": password}, user=self.admin)


@contextmanager
def mlflow_auth_server(directory: Path, postgres: PostgresCluster) -> Iterator[AuthServer]:
    """A team tracking server: runs in database ``mlflow``, users in ``mlflow_auth`` (both on ``postgres``),
    artifacts proxied into ``directory/artifacts``, MLflow's basic-auth app with a random admin password; on
    127.0.0.1 and a free port. Stopped afterwards."""
    postgres.create_database("mlflow")
    postgres.create_database("mlflow_auth")
    admin = ("admin", secrets.token_urlsafe(16))
    config = directory / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"  # users read everything, edit what they create
        f"database_uri = {postgres.uri('mlflow_auth')}\n"
        f"admin_username = {admin[0]}\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1],  # read once, when the auth app creates the admin
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),  # the auth app's CSRF protection needs one
    }
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1"]
    command += ["--workers", "1", "--backend-store-uri", postgres.uri("mlflow")]
    command += ["--artifacts-destination", str(directory / "artifacts")]
    server = AuthServer(command=command, directory=directory, port=free_port(), env=env, admin=admin)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def unauthenticated_status(url: str) -> int:
    """The HTTP status of an API request to ``url`` without credentials (401 when basic auth guards it)."""
    try:
        with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
