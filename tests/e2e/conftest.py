"""Fixtures of the end-to-end tests that start real servers once per test run (``servers.py``): a single-node
SLURM cluster, a PostgreSQL cluster and a team MLflow server with basic auth on it. Each is skipped with the
reason when its binaries are missing here, and stopped, with its temporary directory removed, after the run."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from servers import (
    AuthServer,
    PostgresCluster,
    SlurmCluster,
    missing_postgres,
    missing_slurm,
    mlflow_auth_server,
    postgres_cluster,
    slurm_cluster,
)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """munged + slurmctld + slurmd for this machine, one partition; clients need ``slurm.env`` (``SLURM_CONF``)."""
    reason = missing_slurm()
    if reason:
        pytest.skip(reason)
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1."""
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    with postgres_cluster(tmp_path_factory.mktemp("postgres")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def team_server(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster) -> Iterator[AuthServer]:
    """``mlflow server --app-name basic-auth`` on ``postgres``, with one user, ``team_server.user`` — what a
    team's member logs in as."""
    with mlflow_auth_server(tmp_path_factory.mktemp("team-server"), postgres) as server:
        yield server


@pytest.fixture(scope="session")
def team_user(team_server: AuthServer) -> tuple[str, str]:
    """A (non-admin) user of ``team_server``: (name, password)."""
    user = ("lossforge-ci", f"pw-{secrets.token_urlsafe(12)}")
    team_server.add_user(*user)
    return user
