"""Your own data and model, end to end: a CSV file through a --config-dir option and the example plugin's
dataset and model train as one sweep from the command line; `lossforge benchmark` compares losses on the
plugin's dataset, keeping its test split fixed across seed runs (docs/decisions.md §1)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_extras, run_lossforge, sweep_runs
from mlflow import MlflowClient

from lossforge.protocol.plan import Budget, Entry
from lossforge.protocol.runner import STAGE, Settings, run_protocol

pytestmark = [pytest.mark.slow, needs_extras]
SMALL = (
    "model=residual_mlp",
    "model.width=8",
    "model.blocks=1",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


@pytest.mark.usefixtures("default_store")
def test_a_csv_file_in_a_config_dir_option_and_a_plugin_dataset_train_with_their_provenance(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = tmp_path / "flowers.csv"
    rows = [f"{rng.normal() + k:.4f},{rng.normal() - k:.4f},{['rose', 'tulip', 'iris'][k]}" for k in [0, 1, 2] * 30]
    table.write_text("petal,sepal,kind\n" + "\n".join(rows) + "\n")
    (tmp_path / "mine" / "dataset").mkdir(parents=True)
    (tmp_path / "mine" / "dataset" / "flowers.yaml").write_text(
        f"defaults:\n  - csv\n  - _self_\npath: {table}\ntarget: kind\nsplit_seed: 2\n"
    )
    result = run_lossforge(tmp_path, "--config-dir", str(tmp_path / "mine"), "-m", "dataset=flowers,spirals", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    _, children = sweep_runs(tmp_path)
    runs = {run.data.params["dataset.name"]: run for run in children}
    assert sorted(runs) == ["csv", "spirals"] and all(run.info.status == "FINISHED" for run in children)
    flowers, spirals = runs["csv"], runs["spirals"]
    assert flowers.data.tags["data.sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()
    assert flowers.data.tags["data.path"] == str(table) and flowers.data.params["dataset.split_seed"] == "2"
    assert spirals.data.params["dataset.split_seed"] == "0" and spirals.data.tags["model"] == "residual_mlp"
    for run in children:
        assert len(run.data.tags["data.test_digest"]) == 64 and int(run.data.tags["model.parameters"]) > 0
        assert "test/accuracy" in run.data.metrics


def test_the_benchmark_compares_losses_on_a_plugin_dataset_on_one_test_split(
    tmp_path: Path, default_store: str
) -> None:
    comparison = run_protocol(
        Settings(
            overrides=("dataset=spirals", "dataset.per_class=30", *SMALL[:3]),
            entries=(Entry("cross_entropy"), Entry("focal")),
            budget=Budget(trials=1, seeds=2, max_epochs=1),
            name="spirals",
        ),
        base_dir=tmp_path,
    )
    assert comparison.metric == "test/f1_macro" and comparison.tables
    client = MlflowClient(default_store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    finals = client.search_runs(experiments, filter_string=f"tags.`{STAGE}` = 'final'")
    assert len(finals) == 4 and {run.data.params["seed"] for run in finals} == {"0", "1"}
    assert len({run.data.tags["data.test_digest"] for run in finals}) == 1  # seeds vary, the test split does not
