"""What reaches the statistics of ``lossforge compare`` from a real store (issue #24 §1, §3): runs that failed,
were killed, diverged, lack a metric or ran twice; read-only by default; seeds pooled; the task's baseline;
groups named by what differs; intervals within a metric's range. Stores are real SQLite MLflow stores filled
with ``MlflowClient`` (the ``Store`` of test_compare.py), compared in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_compare import SEEDS, Store, classification_runs

from lossforge.commands import compare as compare_command
from lossforge.evaluation import compare
from lossforge.evaluation.statistics import BETTER, NO_DIFFERENCE, seeds_needed, too_few_runs
from lossforge.sweeps.summary import closing_hint, sweep_summary

MULTICLASS = {"task": "multiclass"}


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> Store:
    return Store(tmp_path, migrated_store)


def tagged(runs: list[dict[str, object]], **tags: str) -> list[dict[str, object]]:
    return [{**run, "tags": {**MULTICLASS, **tags}} for run in runs]


def ended(loss: str, seed: int, outcome: str, error: str, status: str) -> dict[str, object]:
    """A run that ended early: only training and validation metrics, its outcome and error as tags."""
    return {
        "params": {"loss.name": loss, "seed": str(seed), "optimizer.lr": "0.001"},
        "metrics": {"train/loss": 0.5, "val/accuracy": 0.8},
        "status": status,
        "tags": {**MULTICLASS, "lossforge.outcome": outcome, "lossforge.error": error},
    }


def rows_by_group(out: str) -> dict[str, str]:
    """Each group's last table line: its verdict row (the overview's line comes first)."""
    return {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| ")}


def overview(out: str) -> dict[str, str]:
    """Each group's first table line: the overview's."""
    lines: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("| "):
            lines.setdefault(line.split(" | ")[0].lstrip("| "), line)
    return lines


def test_failed_and_killed_runs_are_left_out_listed_and_erase_no_metric(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tagged(classification_runs(seeds=SEEDS))
    runs.append(ended("focal", SEEDS, "failed", "ValueError: a full disk", "FAILED"))
    runs.append(ended("hinge", SEEDS, "killed", "interrupted (KeyboardInterrupt)", "KILLED"))
    parent = store.sweep(runs)
    out = store.compare(capsys, parent, "--mean-over", "seed")
    assert "### test/accuracy ↑ — against cross_entropy" in out  # the early deaths' metrics no longer intersect
    lines = rows_by_group(out)
    assert lines["focal"].endswith(f"| {BETTER} |") and lines["hinge"].endswith(f"| {NO_DIFFERENCE} |")
    assert "Left out of the statistics (2 runs, by outcome):" in out
    assert "- focal, seed 8 (run focal-digits-24): failed — ValueError: a full disk" in out
    assert "- hinge, seed 8 (run hinge-digits-25): killed — interrupted (KeyboardInterrupt)" in out
    rows = json.loads(store.compare(capsys, parent, "--mean-over", "seed", "--format", "json"))
    verdicts = [row for row in rows if row["metric"] == "test/accuracy"]
    assert [(row["group"], row["n"], row["seeds"]) for row in verdicts] == [
        ("cross_entropy", SEEDS, SEEDS),
        ("focal", SEEDS, SEEDS),
        ("hinge", SEEDS, SEEDS),
    ]
    left = [row for row in rows if row["verdict"] == "left out"]
    assert [(row["group"], row["outcome"], row["seed"]) for row in left] == [
        ("focal", "failed", "8"),
        ("hinge", "killed", "8"),
    ]
    assert left[0]["error"] == "ValueError: a full disk"


def test_a_run_missing_one_metric_keeps_the_metric_pairs_on_shared_seeds_and_says_so(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tagged(classification_runs())
    for run in runs:
        run["metrics"] = {**run["metrics"], "test/ece": 0.05 - (0.01 if run["params"]["loss.name"] == "focal" else 0)}  # type: ignore[index, dict-item]
    focal_seed_2 = next(r for r in runs if r["params"] == {"loss.name": "focal", "seed": "2", "optimizer.lr": "0.001"})
    del focal_seed_2["metrics"]["test/ece"]  # type: ignore[attr-defined]  # a non-finite value is not logged
    parent = store.sweep(runs)
    report = compare.compare(parent, tracking_uri=store.uri, mean_over="seed", log=False)
    focal = {row.metric: row for row in report.rows if row.group == "focal"}
    assert set(focal) == {"test/accuracy", "test/ece"}  # the metric stays, for every group
    assert focal["test/ece"].n == SEEDS - 1 and focal["test/ece"].paired  # paired on the 7 seeds both ran
    assert focal["test/ece"].verdict == BETTER
    text = report.to_text()
    assert f"test/ece: 1 of {3 * SEEDS} finished runs lack it (focal seed 2)" in text
    assert f"paired by seed (focal on the {SEEDS - 1} seeds both ran)" in text
    rows = json.loads(report.to_json())
    assert next(r for r in rows if r["group"] == "focal" and r["metric"] == "test/ece")["missing"] == 1


def test_a_loss_that_diverged_on_some_seeds_gets_no_clean_verdict(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tagged(classification_runs())
    diverged = {"0", "5"}
    runs = [run for run in runs if not (run["params"]["loss.name"] == "focal" and run["params"]["seed"] in diverged)]  # type: ignore[index]
    runs += [ended("focal", int(seed), "diverged", "NonFiniteLossError: loss is nan", "FAILED") for seed in diverged]
    parent = store.sweep(runs)
    out = store.compare(capsys, parent, "--mean-over", "seed")
    assert overview(out)["focal"].startswith(f"| focal | 2 of {SEEDS} seeds diverged | {SEEDS} |")  # the overview
    focal = next(line for line in out.splitlines() if line.startswith(f"| focal | {SEEDS - 2} |"))
    assert focal.endswith(f"| diverged on 2 of {SEEDS} seeds |") and BETTER not in focal
    assert "Holm-adjusted over the 1 comparison against cross_entropy on test/accuracy" in out  # focal is outside
    assert "gets no statistical verdict" in out and "Left out of the statistics" not in out
    rows = json.loads(store.compare(capsys, parent, "--mean-over", "seed", "--format", "json"))
    row = next(row for row in rows if row["group"] == "focal")
    assert (row["diverged"], row["seeds"], row["p_value"], row["verdict"]) == (
        2,
        SEEDS,
        None,
        f"diverged on 2 of {SEEDS} seeds",
    )


def test_a_rerun_of_a_seed_counts_once_the_newest_finished_run(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tagged(classification_runs())
    rerun = {**runs[0], "metrics": {**runs[0]["metrics"], "test/accuracy": 0.5}}  # type: ignore[dict-item]
    parent = store.sweep([*runs, rerun])  # cross_entropy seed 0 twice; the re-run is newer
    report = compare.compare(parent, tracking_uri=store.uri, mean_over="seed", log=False)
    baseline = report.tables["test/accuracy"][0]
    assert baseline.group == "cross_entropy" and baseline.n == SEEDS and baseline.values["0"] == 0.5
    assert (
        "Re-runs: cross_entropy seed 0 ran 2 times. Only the newest finished run of each seed counts"
        in report.to_text()
    )


def test_the_holm_family_is_named_and_counts_only_the_tested_rows(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tagged(classification_runs())
    runs.append(
        {
            "params": {"loss.name": "ldam", "seed": "0", "optimizer.lr": "0.001"},
            "metrics": {"test/accuracy": 0.9},
            "tags": MULTICLASS,
        }
    )
    out = store.compare(capsys, store.sweep(runs), "--mean-over", "seed")
    assert "Holm-adjusted over the 2 comparisons against cross_entropy on test/accuracy" in out  # not ldam's
    # ldam's one run against the baseline's 8, unpaired: 3 runs could pass Holm over 3 comparisons
    # (3 · 2/C(11, 3) = 0.036); assuming equal n on both sides, the advice said 5.
    advice = too_few_runs(seeds_needed(3, paired=False, n_baseline=SEEDS))
    assert advice == too_few_runs(3) != too_few_runs(seeds_needed(3, paired=False))
    assert rows_by_group(out)["ldam"].endswith(f"| {advice} |")


def test_compare_reads_only_unless_asked_to_log(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    parent = store.sweep(tagged(classification_runs(seeds=3)))
    out = store.compare(capsys, parent)
    assert "Logged to" not in out
    run = store.client.get_run(parent)
    assert store.client.list_artifacts(parent) == [] and run.data.metrics == {}
    assert (
        compare_command.main([parent, "--tracking-uri", store.uri, "--no-log", "--output", str(store.root / "p.png")])
        == 0
    )
    assert "--no-log is the default now" in capsys.readouterr().err
    assert store.client.list_artifacts(parent) == []
    assert "Logged to the sweep's MLflow run" in store.compare(capsys, parent, "--log")
    assert store.client.list_artifacts(parent, "comparison") and store.client.get_run(parent).data.metrics


def test_seeds_are_pooled_by_default_and_mean_over_adds_parameters(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        {
            "params": {"loss.name": loss, "seed": str(seed), "dataset.split_seed": str(split)},
            "metrics": {"test/mae": 1.0 + seed + split},
            "tags": {"task": "regression"},
        }
        for loss in ("l1", "l2")
        for seed in range(3)
        for split in range(2)
    ]
    parent = store.sweep(runs)
    report = compare.compare(parent, tracking_uri=store.uri)  # -m loss=l1,l2 seed=0,1,2 dataset.split_seed=0,1
    assert report.summary == "4 groups from 12 runs, mean over seed"
    assert [(group.label, group.seeds) for group in report.groups] == [
        ("l1 dataset.split_seed=0", 3),
        ("l1 dataset.split_seed=1", 3),
        ("l2 dataset.split_seed=0", 3),
        ("l2 dataset.split_seed=1", 3),
    ]
    assert "No baseline: 2 groups trained l2 (l2 dataset.split_seed=0, l2 dataset.split_seed=1)" in report.to_text()
    both = compare.compare(parent, tracking_uri=store.uri, mean_over="dataset.split_seed")
    assert [(group.label, group.seeds) for group in both.groups] == [("l2", 6), ("l1", 6)]
    assert both.summary == "2 groups from 12 runs, mean over seed, dataset.split_seed"
    assert both.tables["test/mae"][1].paired  # l1 and l2 ran the same (seed, split) pairs
    single = compare.compare(parent, tracking_uri=store.uri, mean_over="none")
    assert single.summary == "12 runs" and len(single.groups) == 12


@pytest.mark.parametrize(
    ("task", "losses", "miner", "baseline"),
    [
        ("regression", ("l1", "l2", "huber"), None, "l2"),
        ("binary", ("focal", "bce"), None, "bce"),
        ("multilabel", ("bce", "focal"), None, "bce"),
        ("multiclass", ("focal", "cross_entropy"), None, "cross_entropy"),
        ("metric", ("triplet", "contrastive"), "semihard_triplets", "contrastive+semihard_triplets"),
    ],
)
def test_each_task_declares_the_default_baseline(
    store: Store, task: str, losses: tuple[str, ...], miner: str | None, baseline: str
) -> None:
    extra = {"miner.name": miner} if miner else {}
    runs = [
        {
            "params": {"loss.name": loss, "seed": str(seed), **extra},
            "metrics": {"test/accuracy": 0.5 + 0.01 * seed},
            "tags": {"task": task},
        }
        for loss in losses
        for seed in range(2)
    ]
    report = compare.compare(store.sweep(runs), tracking_uri=store.uri)
    assert report.baseline == baseline and "No baseline" not in report.to_text()
    assert f"— against {baseline}" in report.to_text()


def test_groups_are_named_by_what_differs(store: Store) -> None:
    runs = [
        {
            "params": {"loss.name": "focal", "loss.gamma": gamma, "seed": "0", "run_name": "null"},
            "metrics": {"test/accuracy": 0.9},
            "tags": MULTICLASS,
        }
        for gamma in ("0", "2")
    ]
    report = compare.compare(store.sweep(runs), tracking_uri=store.uri)
    assert [group.label for group in report.groups] == ["focal gamma=0", "focal gamma=2"]


def test_an_interval_past_a_metrics_range_is_shown_clipped_and_says_so(store: Store) -> None:
    rng = np.random.default_rng(0)
    runs = [
        {
            "params": {"loss.name": loss, "seed": str(seed)},
            "metrics": {"test/accuracy": min(1.0, level + rng.normal(0, 0.02))},
            "tags": MULTICLASS,
        }
        for loss, level in (("cross_entropy", 0.9), ("focal", 0.995))
        for seed in range(3)
    ]
    report = compare.compare(store.sweep(runs), tracking_uri=store.uri)
    focal = report.tables["test/accuracy"][1]
    assert focal.ci_high is not None and focal.ci_high > 1.0  # the t interval as computed (the JSON keeps it)
    text = report.to_text()
    assert "1.0000]* |" in rows_by_group(text.split("### ")[1])["focal"]
    assert "* interval shown within the range of test/accuracy, [0, 1]" in text
    assert json.loads(report.to_json())[1]["ci_high"] == pytest.approx(focal.ci_high)


def test_the_sweeps_closing_hint_names_the_baseline_and_the_seeds_a_verdict_needs(store: Store) -> None:
    report = compare.compare(store.sweep(tagged(classification_runs(seeds=2))), tracking_uri=store.uri)
    hint = closing_hint(report)
    assert hint == "baseline cross_entropy; a verdict needs ≥ 7 seeds per group: add seed=0,1,2,3,4,5,6"
    assert sweep_summary("abc", 6, [], hint=hint).endswith(f"lossforge compare abc   ({hint})")
    enough = compare.compare(store.sweep(tagged(classification_runs(seeds=7))), tracking_uri=store.uri)
    assert closing_hint(enough) == "baseline cross_entropy"


def test_across_keys_groups_by_the_group_not_the_loss_name(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    sweeps = []
    for index, dataset in enumerate(("a", "b", "c")):
        runs = [
            {
                "params": {"loss.name": "focal", "loss.gamma": gamma, "seed": str(seed), "dataset.name": dataset},
                "metrics": {"test/accuracy": level - 0.01 * index + 0.001 * seed},
            }
            for gamma, level in (("0.5", 0.8), ("2", 0.9))
            for seed in range(2)
        ]
        runs += [
            {
                "params": {"loss.name": "cross_entropy", "seed": str(seed), "dataset.name": dataset},
                "metrics": {"test/accuracy": 0.85},
            }
            for seed in range(2)
        ]
        sweeps.append(store.sweep(runs))
    report = compare.compare_across(sweeps, metric="test/accuracy", tracking_uri=store.uri)
    assert list(report.result.average_ranks) == ["focal gamma=2", "cross_entropy", "focal gamma=0.5"]
    assert report.result.average_ranks["focal gamma=2"] == 1.0


def test_a_benchmark_with_a_seed_killed_during_its_test_pass_keeps_its_verdict(store: Store) -> None:
    """A `lossforge benchmark` comparison run (parent → studies → seed runs) as the protocol logs it; one seed
    run was killed before its test metrics. The verdict — the one the protocol prints, compare's — stays."""
    client = store.client
    tags = {"lossforge.protocol.stage": "comparison", "lossforge.protocol.metric": "test/mae", "task": "regression"}
    parent = client.create_run(store.experiment, run_name="comparison outliers", tags=tags).info.run_id
    client.log_param(parent, "baseline", "l2")
    rng = np.random.default_rng(0)
    for loss, level in (("l2", 1.4), ("l1", 0.15)):
        study = client.create_run(
            store.experiment,
            run_name=f"study {loss}",
            tags={"mlflow.parentRunId": parent, "lossforge.protocol.stage": "study", "entry": loss},
        ).info.run_id
        for seed in range(SEEDS):
            run = client.create_run(
                store.experiment,
                run_name=f"{loss} seed {seed}",
                tags={"mlflow.parentRunId": study, "lossforge.protocol.stage": "final", "task": "regression"},
                start_time=1_000 + seed,
            ).info.run_id
            client.log_param(run, "loss.name", loss)
            client.log_param(run, "seed", str(seed))
            client.log_metric(run, "val/mae", level)
            if loss == "l1" and seed == SEEDS - 1:  # killed during its test pass
                client.set_tag(run, "lossforge.outcome", "killed")
                client.set_tag(run, "lossforge.error", "interrupted (SIGTERM)")
                client.set_terminated(run, "KILLED")
                continue
            client.log_metric(run, "test/mae", level + rng.normal(0, 0.01))
            client.set_terminated(run)
        client.set_terminated(study)
    report = compare.compare(parent, tracking_uri=store.uri)
    assert report.kind == "Comparison" and list(report.tables) == ["test/mae"]
    l1 = report.tables["test/mae"][1]
    assert (l1.group, l1.n, l1.paired, l1.verdict) == ("l1", SEEDS - 1, True, BETTER)
    assert f"- l1, seed {SEEDS - 1} (run l1 seed {SEEDS - 1}): killed — interrupted (SIGTERM)" in report.to_text()
