"""What a comparison writes onto its parent run (lossforge.evaluation.dashboard): the winner in the description and
the tags, short metric names, children tagged by group — against a real SQLite MLflow store — and a figure that
draws only what its legend promises."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest
from hydra.types import RunMode
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from omegaconf import OmegaConf

from lossforge.commands import ui
from lossforge.evaluation import compare, dashboard
from lossforge.evaluation.statistics import verdict_table
from lossforge.sweeps import MlflowSweepCallback
from lossforge.tracking import dashboard_command, mlflow_run, run_context_tags, sweep_job

SEEDS = 8  # two comparisons, Holm-adjusted, need at least 7 paired seeds for a verdict
#: Accuracy per seed: focal clearly above cross_entropy on every seed, hinge the same up to noise.
ACCURACY = {
    "cross_entropy": [0.900, 0.910, 0.905, 0.895, 0.908, 0.902, 0.899, 0.906],
    "focal": [0.951, 0.962, 0.955, 0.948, 0.960, 0.953, 0.950, 0.957],
    "hinge": [0.902, 0.907, 0.906, 0.897, 0.906, 0.901, 0.901, 0.903],
}


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> tuple[MlflowClient, str, str]:
    """A sweep's parent and a finished child per loss and seed; returns the client, its URI and the parent."""
    shutil.copyfile(migrated_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lossforge", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep", tags={"lossforge.sweep": "parent"}).info.run_id
    now = int(time.time() * 1000)
    for loss, values in ACCURACY.items():
        for seed, value in enumerate(values):
            child = client.create_run(experiment, run_name=f"{loss}-{seed}", tags={"mlflow.parentRunId": parent})
            client.log_batch(
                child.info.run_id,
                metrics=[Metric("test/accuracy", value, now, 0), Metric("test/f1_macro", value - 0.01, now, 0)],
                params=[Param("loss.name", loss), Param("seed", str(seed))],
            )
            client.set_terminated(child.info.run_id)
    client.set_terminated(parent)
    return client, uri, parent


def test_the_parent_run_opens_on_the_winner_and_a_later_log_replaces_what_the_first_wrote(
    store: tuple[MlflowClient, str, str],
) -> None:
    client, uri, parent = store
    client.set_tag(parent, "lossforge.verdict.test/old_metric", "stale")  # a metric no longer compared
    compare.compare(parent, tracking_uri=uri, mean_over="seed", baseline="cross_entropy", log=True)
    run = client.get_run(parent)
    note = run.data.tags[dashboard.DESCRIPTION_TAG]
    assert note.startswith("## Winner: focal\n"), note  # the first line of the run page names the winner
    assert "| test/accuracy ↑ | **focal** | +0.05" in note  # the difference to the baseline, short
    assert "| **focal** (winner) | 8 | **0.9545**" in note and "| cross_entropy (baseline) | 8 |" in note
    assert f"get-artifact?path=comparison/plot.png&run_uuid={parent}" in note  # the figure, shown inline

    tags = run.data.tags
    assert tags["lossforge.winner"] == "focal" and tags["lossforge.baseline"] == "cross_entropy"
    assert tags["lossforge.verdict.test/accuracy"].startswith("focal better than cross_entropy: +0.05")
    assert "lossforge.verdict.test/old_metric" not in tags  # deleted, not left to contradict the new verdict

    expected = {
        f"{group}/{metric}{suffix}"
        for group in ACCURACY
        for metric in ("test/accuracy", "test/f1_macro")
        for suffix in ("", "/ci_low", "/ci_high")
    }
    assert set(run.data.metrics) == expected  # short names, sorting by group
    assert all(value == round(value, 4) for value in run.data.metrics.values())  # no 16-digit display
    assert run.data.metrics["focal/test/accuracy"] == pytest.approx(0.9545, abs=1e-4)

    children = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    groups = {child.info.run_name: child.data.tags.get("lossforge.group") for child in children}
    assert groups == {f"{loss}-{seed}": loss for loss in ACCURACY for seed in range(SEEDS)}
    focal = next(child for child in children if child.info.run_name == "focal-0")
    assert focal.data.tags["lossforge.verdict"] == "test/accuracy: winner; test/f1_macro: winner"

    # A person's note below the last line survives; a second log replaces the rest instead of adding to it.
    client.set_tag(parent, dashboard.DESCRIPTION_TAG, f"{note}\nTried on the new cluster.\n")
    compare.compare(parent, tracking_uri=uri, mean_over="seed", baseline="cross_entropy", log=True)
    again = client.get_run(parent)
    assert again.data.tags[dashboard.DESCRIPTION_TAG] == f"{note}\nTried on the new cluster.\n"
    assert set(again.data.metrics) == expected


@pytest.mark.parametrize(
    ("groups", "baseline", "answer"),
    [
        ({"ce": [0.90, 0.91, 0.92, 0.90, 0.91, 0.92], "f": [0.95, 0.96, 0.97, 0.95, 0.96, 0.97]}, "ce", "f"),
        ({"ce": [0.90, 0.91, 0.92, 0.90, 0.91, 0.92], "f": [0.85, 0.86, 0.87, 0.85, 0.86, 0.87]}, "ce", "ce"),
        ({"ce": [0.90, 0.91, 0.92, 0.90, 0.91, 0.92], "f": [0.92, 0.90, 0.91, 0.91, 0.92, 0.90]}, "ce", "no sig"),
        ({"ce": [0.90, 0.91], "f": [0.95, 0.96]}, "ce", "too few runs for a verdict (needs ≥ 6 seeds)"),
        ({"ce": [0.90, 0.91], "f": [0.95, 0.96]}, None, "no baseline to compare with"),
    ],
    ids=["better", "every-other-worse", "no-difference", "too-few-runs", "no-baseline"],
)
def test_a_metric_has_a_winner_only_where_a_group_is_significantly_better(
    groups: dict[str, list[float]], baseline: str | None, answer: str
) -> None:
    rows = verdict_table(
        {name: dict(enumerate(values)) for name, values in groups.items()}, metric="test/accuracy", baseline=baseline
    )
    (winner,) = dashboard.winners({"test/accuracy": rows})
    assert winner.text.startswith(answer), winner
    tags = dashboard.verdict_tags({"test/accuracy": rows})
    assert tags["lossforge.winner"] == winner.text
    headline = dashboard.description(run_id="r", summary="s", tables={"test/accuracy": rows}, plot=False)
    assert headline.startswith("## Winner: " if winner.group else "## No"), headline


def test_a_one_seed_figure_promises_no_dots_or_intervals_and_does_not_magnify_a_tiny_difference() -> None:
    rows = verdict_table({"cross_entropy": {0: 0.9500}, "focal": {0: 0.9509}}, metric="test/accuracy")
    figure = dashboard.verdict_figure({"test/accuracy": rows})
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    legend = figure.get_suptitle()
    assert "seed" not in legend and "CI" not in legend, legend  # nothing of the kind is drawn
    assert "one run" in legend, legend
    assert not axes.collections and not axes.containers  # no seed dots, no error bars
    low, high = axes.get_ylim()
    assert high - low >= 0.05 * 0.95, (low, high)  # 0.0009 is under 2 % of the axis, not a cliff
    assert low <= 0.9500 and high >= 0.9509
    assert axes.get_ylabel() == f"axis from {low:.4g} to {high:.4g}"

    several = verdict_table(
        {"cross_entropy": {0: 0.90, 1: 0.91, 2: 0.92}, "focal": {0: 0.93, 1: 0.95, 2: 0.94}},
        metric="test/accuracy",
        baseline="cross_entropy",
    )
    legend = dashboard.verdict_figure({"test/accuracy": several}).get_suptitle()
    assert "dots: each seed" in legend and "mean with 95 % CI" in legend and "dashed" in legend, legend


def test_a_sweep_ends_by_printing_the_command_that_opens_its_own_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    hydra = {
        "mode": RunMode.MULTIRUN,
        "sweep": {"dir": str(tmp_path / "sweep")},
        "job": {"num": 0},
        "overrides": {"task": ["loss=l1,huber"]},
        "runtime": {"cwd": str(tmp_path)},
    }
    logger = {"tracking_uri": store, "artifact_location": (tmp_path / "artifacts").as_uri(), "experiment": "sweeps"}
    config = OmegaConf.create({"logger": logger, "hydra": hydra})
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    job = sweep_job(config.hydra)
    with mlflow_run(tracking_uri=store, experiment="sweeps", run_name="l1", tags=run_context_tags(job)):
        pass
    callback.on_multirun_end(config)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Dashboard:")]
    assert printed == [f"Dashboard:         {dashboard_command(store, run_id=callback.parent_run_id)}"]
    assert printed[0].endswith(f" -m lossforge ui --tracking-uri {store} --run {callback.parent_run_id}")


def test_lossforge_ui_names_a_run_it_cannot_open(
    default_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    MlflowClient(default_store).create_experiment("lossforge")
    monkeypatch.chdir(tmp_path)
    assert ui.main(["--run", "0123abcd"]) == 2
    assert f"lossforge ui: no run '0123abcd' in {default_store}" in capsys.readouterr().err


def test_a_description_too_long_for_mlflow_leaves_the_group_table_to_the_artifacts() -> None:
    groups = {f"focal with a long label {index}": {0: 0.9 + 0.001 * index, 1: 0.91} for index in range(150)}
    tables = {"test/accuracy": verdict_table(groups, metric="test/accuracy")}
    full = dashboard.description(run_id="r", summary="s", tables=tables, plot=True, max_length=10**6)
    short = dashboard.description(run_id="r", summary="s", tables=tables, plot=True, previous="note " * 3000)
    assert len(full) > dashboard.MAX_DESCRIPTION >= len(short)
    assert "| focal with a long label 149 |" in full and "The table of every group is in `comparison/table.md`" in short
    assert short.startswith(full.split("\n")[0]) and dashboard.DESCRIPTION_END in short


def test_a_metric_whose_other_groups_have_no_verdict_of_their_own_has_no_winner_and_says_so() -> None:
    rows = verdict_table(
        {"ce": dict(enumerate([0.90, 0.91, 0.92, 0.90, 0.91, 0.92])), "f": dict(enumerate([0.2] * 6))},
        metric="test/accuracy",
        baseline="ce",
    )
    rows = [dataclasses.replace(row, verdict="diverged on 3 of 6 seeds") if row.verdict else row for row in rows]
    (winner,) = dashboard.winners({"test/accuracy": rows})
    assert (winner.group, winner.reason) == (None, "no group significantly better than the baseline")
