"""``lossforge.tracking.store``: a tracking server that refuses the credentials or stops answering fails clearly
and within bounded time. (A real basic-auth server: ``tests/e2e/test_team_server.py``.)"""

from __future__ import annotations

import os

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, PERMISSION_DENIED, UNAUTHENTICATED

from lossforge.distributed import free_port
from lossforge.tracking.store import (
    HTTP_LIMITS,
    TrackingCredentialsError,
    TrackingUnavailableError,
    _refusal,
    check_reachable,
    limit_http_retries,
)

URI = "http://alice:s3cret-pw@mlflow.internal:5000"


def test_a_401_names_the_user_and_the_variables_never_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-pw")
    error = _refusal(MlflowException("401", error_code=UNAUTHENTICATED), URI, "listing experiments")
    assert isinstance(error, TrackingCredentialsError) and isinstance(error, ConnectionError)  # cli: one paragraph
    message = str(error)
    assert "refused the credentials of user 'alice' (HTTP 401) when listing experiments" in message
    assert "MLFLOW_TRACKING_PASSWORD" in message and "Nothing was trained." in message
    assert "s3cret-pw" not in message and "http://***@mlflow.internal:5000" in message


def test_a_401_without_a_user_says_none_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    error = _refusal(MlflowException("401", error_code=UNAUTHENTICATED), URI, "listing experiments")
    assert "no user (MLFLOW_TRACKING_USERNAME is not set)" in str(error)


def test_a_403_asks_for_permission_and_other_errors_are_not_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    error = _refusal(MlflowException("403", error_code=PERMISSION_DENIED), URI, "reading experiment 'x'")
    assert "accepted user 'alice' but refused the access (HTTP 403)" in str(error) and "EDIT permission" in str(error)
    assert _refusal(MlflowException("bad", error_code=INVALID_PARAMETER_VALUE), URI, "x") is None


def test_http_limits_fill_in_only_what_the_user_did_not_set() -> None:
    environment = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "9"}
    limit_http_retries(environment)
    assert environment == {**HTTP_LIMITS, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "9"}


def test_a_server_that_does_not_answer_fails_in_seconds_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HTTP_LIMITS:
        monkeypatch.delenv(name, raising=False)  # check_reachable sets them for this process
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(TrackingUnavailableError, match=f"{uri} did not answer within 5 s") as raised:
        check_reachable(uri)
    assert not isinstance(raised.value, TrackingCredentialsError)
    assert all(os.environ[name] == value for name, value in HTTP_LIMITS.items())
