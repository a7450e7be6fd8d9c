"""lossforge.tracking.secrets: what is redacted where — at the config node, in overrides, in free text and logs."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

from lossforge.tracking.secrets import (
    credentials_in_uri,
    install_log_scrubber,
    is_secret_name,
    recordable_overrides,
    redact_config,
    redact_yaml_text,
    run_name_for,
    scrub_secrets,
)


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASS",
        "PRIVATE_KEY",
        "SSH_KEY",
        "DB_PWD",
        "GPG_PASSPHRASE",
        "DATABASE_URL",
        "SENTRY_DSN",
        "GH_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "MLFLOW_TRACKING_PASSWORD",
        "api_key",
        "db_password",
    ],
)
def test_secret_names_the_readme_promises_are_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "HOME", "seed", "batch_size", "SLURM_JOB_ID"])
def test_ordinary_names_are_not(name: str) -> None:
    assert not is_secret_name(name)


def test_an_env_secret_is_redacted_at_its_node_whatever_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASS", "ab")  # short: a substring replacement would mangle "abc", "tab", …
    monkeypatch.setenv("DEPLOY_USER", "carol")
    cfg = OmegaConf.create(
        {
            "password": "${oc.env:DB_PASS}",
            "copy": "${password}",
            "address": "postgres://${oc.env:DEPLOY_USER}:${oc.env:DB_PASS}@db/x",
            "label": "tab-abc",
            "nested": {"my_token": 12345},
        }
    )
    assert redact_config(cfg) == {
        "password": "***",
        "copy": "***",
        "address": "postgres://carol:***@db/x",
        "label": "tab-abc",  # untouched: the short value is not replaced as a substring
        "nested": {"my_token": "***"},
    }
    assert scrub_secrets("tab-abc") == "tab-abc"


def test_free_text_loses_env_values_secret_assignments_and_uri_credentials() -> None:
    environment = {"GH_TOKEN": "ghp-0123456789", "HOME": "/home/me"}
    text = "token ghp-0123456789 at /home/me; +db.api_key=k3y seed=1 via https://bob:pw@host/x PWD=/home/me"
    assert scrub_secrets(text, environment) == (
        "token *** at /home/me; +db.api_key=*** seed=1 via https://***@host/x PWD=/home/me"
    )


def test_overrides_are_recorded_as_typed_with_secret_values_replaced() -> None:
    typed = ["loss=focal", "+x=${oc.env:AWS_SECRET_ACCESS_KEY}", "+user=${oc.env:USER}", "+db_password=hunter2"]
    assert recordable_overrides(typed) == ["loss=focal", "+x=***", "+user=${oc.env:USER}", "+db_password=***"]


def test_hydra_records_are_redacted_before_they_are_logged() -> None:
    record = "db_password: hunter2\nextra: ${oc.env:SSH_KEY}\ntask:\n- +api_token=abc\n- seed=1\n"
    redacted = redact_yaml_text(record)
    assert "hunter2" not in redacted and "abc" not in redacted and "SSH_KEY" not in redacted
    assert "seed=1" in redacted


def test_a_run_is_never_named_after_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PWD", "hunter22")
    assert run_name_for(OmegaConf.create({"run_name": "${oc.env:DB_PWD}"}), "l1-digits-seed0") == "l1-digits-seed0"
    assert run_name_for(OmegaConf.create({"run_name": None}), "default") == "default"
    assert run_name_for(OmegaConf.create({"run_name": "mine"}), "default") == "mine"


def test_uri_credentials_are_detected() -> None:
    assert credentials_in_uri("https://alice:pw@mlflow.example")
    assert credentials_in_uri("http://token@mlflow.example")
    assert not credentials_in_uri("http://mlflow.example:5000/path@x")
    assert not credentials_in_uri("sqlite:////tmp/mlflow.db")


def test_log_records_are_scrubbed_as_they_are_made(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = logging.getLogRecordFactory()
    monkeypatch.setenv("SERVICE_SECRET", "s3cr3t-value")
    try:
        install_log_scrubber()
        install_log_scrubber()  # idempotent
        with caplog.at_level(logging.INFO):
            logging.getLogger("hydra.test").info("#0 : %s", "+note=s3cr3t-value +db_password=hunter2 seed=1")
    finally:
        logging.setLogRecordFactory(original)
    assert caplog.records[-1].getMessage() == "#0 : +note=*** +db_password=*** seed=1"
