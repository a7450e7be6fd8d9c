"""``lossforge ui``: which page it opens, and what it says when there is nothing to show."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from lossforge.commands.ui import TRAINING_VIEW, main, newest_page
from lossforge.tracking.store import dashboard_command


def test_it_opens_the_newest_sweep_or_comparison(default_store: str) -> None:
    client = MlflowClient(default_store)
    assert newest_page(client, "lossforge") == f"/experiments{TRAINING_VIEW}"
    experiment = client.create_experiment("lossforge")
    assert newest_page(client, "lossforge") == f"/experiments/{experiment}/runs{TRAINING_VIEW}"
    plain = client.create_run(experiment).info.run_id
    assert newest_page(client, "lossforge") == f"/experiments/{experiment}/runs/{plain}{TRAINING_VIEW}"
    sweep = client.create_run(experiment, tags={"lossforge.sweep": "parent"}).info.run_id
    client.create_run(experiment)  # a newer child: the sweep still wins
    assert newest_page(client, "lossforge") == f"/experiments/{experiment}/runs/{sweep}{TRAINING_VIEW}"
    comparison = client.create_run(experiment, tags={"lossforge.protocol.stage": "comparison"}).info.run_id
    assert newest_page(client, "lossforge") == f"/experiments/{experiment}/runs/{comparison}{TRAINING_VIEW}"


def test_a_server_needs_no_ui_and_a_missing_store_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 1
    assert f"no MLflow store at sqlite:///{tmp_path}/outputs/mlflow.db yet" in capsys.readouterr().err
    assert dashboard_command("sqlite:///x.db").endswith("-m lossforge ui --tracking-uri sqlite:///x.db")
