"""``lossforge compare`` end to end against a real SQLite MLflow store: a sweep's parent and child runs made with
``MlflowClient`` (no training), then ``compare.main`` in-process — the printed tables, the JSON rows, the artifacts
and the group metrics on the parent run."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from lossforge.commands import compare as compare_command
from lossforge.evaluation import compare, dashboard
from lossforge.evaluation.statistics import BETTER, NO_DIFFERENCE, too_few_runs, verdict_table

SEEDS = 8
REQUIRED = {"group", "metric", "n", "mean", "ci_low", "ci_high", "std", "direction"}
AGAINST_BASELINE = {"baseline", "difference", "difference_ci_low", "difference_ci_high", "p_value", "p_adjusted"}
ARTIFACTS = {"comparison/plot.png", "comparison/table.md", "comparison/table.csv", "comparison/table.json"}


class Store:
    """An MLflow store in ``tmp_path`` and the ``lossforge`` experiment in it."""

    def __init__(self, root: Path, migrated: Path) -> None:
        shutil.copyfile(migrated, root / "mlflow.db")
        self.root = root
        self.uri = f"sqlite:///{root}/mlflow.db"
        self.client = MlflowClient(self.uri)
        self.experiment = self.client.create_experiment("lossforge", artifact_location=(root / "artifacts").as_uri())

    def sweep(self, runs: Sequence[Mapping[str, object]], overrides: str = "loss=... seed=...") -> str:
        """A parent run with one finished child per entry of ``runs`` (``params`` and ``metrics``)."""
        parent = self.client.create_run(self.experiment, run_name="sweep", tags={"lossforge.sweep": "parent"})
        parent_id = parent.info.run_id
        self.client.log_param(parent_id, "overrides", overrides)
        for number, run in enumerate(runs):
            params: dict[str, str] = run["params"]  # type: ignore[assignment]
            metrics: dict[str, float] = run["metrics"]  # type: ignore[assignment]
            child = self.client.create_run(
                self.experiment,
                run_name=f"{params['loss.name']}-digits-{number}",
                tags={"mlflow.parentRunId": parent_id, "lossforge.sweep": "child"},
            )
            now = int(time.time() * 1000)
            self.client.log_batch(
                child.info.run_id,
                metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
                params=[Param(key, value) for key, value in {**params, "hydra.job.num": str(number)}.items()],
            )
            self.client.set_terminated(child.info.run_id, str(run.get("status", "FINISHED")))
        self.client.set_terminated(parent_id)
        return parent_id

    def compare(self, capsys: pytest.CaptureFixture[str], *args: str) -> str:
        plot = [] if "--output" in args else ["--output", str(self.root / "compare.png")]  # never the checkout's
        assert compare_command.main([*args, "--tracking-uri", self.uri, *plot]) == 0
        return capsys.readouterr().out


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> Store:
    return Store(tmp_path, migrated_store)


def classification_runs(seeds: int = SEEDS) -> list[dict[str, object]]:
    """cross_entropy; focal, clearly better on every seed; hinge, the same as cross_entropy up to noise."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0.0, 0.01, seeds)  # the split and initialisation each seed shares across losses
    shifts = {"cross_entropy": 0.0, "focal": 0.03, "hinge": 0.0}
    runs = []
    for loss, shift in shifts.items():
        for seed in range(seeds):
            accuracy = 0.9 + shift + seed_effect[seed] + rng.normal(0.0, 0.003)
            metrics = {"test/accuracy": accuracy, "test/loss": 0.3 + rng.normal(0.0, 0.1), "test/recall/3": accuracy}
            runs.append({"params": {"loss.name": loss, "seed": str(seed), "optimizer.lr": "0.001"}, "metrics": metrics})
    return runs


def test_compare_prints_groups_verdicts_and_what_the_numbers_mean(
    store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parent = store.sweep(classification_runs())
    out = store.compare(capsys, parent, "--mean-over", "seed", "--output", str(tmp_path / "cmp.png"))
    assert f"Sweep {parent} (loss=... seed=...): 3 groups from {3 * SEEDS} runs, mean over seed" in out
    assert "| group | status | n | loss.name | test/accuracy ↑ |" in out  # test/loss is not a column
    assert "± is the sample standard deviation" in out and "↑: higher is better" in out
    assert "Left out: test/loss (each loss's own objective: not comparable across losses)" in out
    assert "### test/accuracy ↑ — against cross_entropy" in out
    lines = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert lines["cross_entropy"].endswith("| baseline |")
    assert lines["focal"].endswith(f"| {BETTER} |") and lines["hinge"].endswith(f"| {NO_DIFFERENCE} |")
    assert "paired by seed" in out and "Holm-adjusted over the 2 comparisons" in out
    assert (tmp_path / "cmp.png").stat().st_size > 0


def test_json_rows_carry_every_number_and_the_parent_run_gets_tables_plot_and_group_metrics(
    store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parent = store.sweep(classification_runs())
    out = store.compare(capsys, parent, "--mean-over", "seed", "--format", "json", "--output", str(tmp_path / "c.png"))
    rows = {row["group"]: row for row in json.loads(out)}  # stdout is JSON only
    assert list(rows) == ["cross_entropy", "focal", "hinge"]
    assert all(REQUIRED | AGAINST_BASELINE | {"verdict", "paired", "values"} <= set(row) for row in rows.values())
    assert rows["cross_entropy"]["verdict"] is None and rows["cross_entropy"]["baseline"] is None
    focal = rows["focal"]
    assert (focal["metric"], focal["direction"], focal["n"], focal["baseline"]) == (
        "test/accuracy",
        "higher",
        SEEDS,
        "cross_entropy",
    )
    assert focal["verdict"] == BETTER and focal["paired"] and focal["p_adjusted"] <= 0.05
    assert focal["difference_ci_low"] < focal["difference"] < focal["difference_ci_high"]
    assert focal["difference"] == pytest.approx(0.03, abs=0.005)
    assert focal["mean"] == pytest.approx(np.mean(list(focal["values"].values())))
    assert rows["hinge"]["verdict"] == NO_DIFFERENCE

    run = store.client.get_run(parent)
    assert {a.path for a in store.client.list_artifacts(parent, "comparison")} == ARTIFACTS
    for group, row in rows.items():  # short names, rounded for display (lossforge.evaluation.dashboard)
        assert run.data.metrics[f"{group}/test/accuracy"] == pytest.approx(row["mean"], abs=1e-4)
        assert run.data.metrics[f"{group}/test/accuracy/ci_low"] == pytest.approx(row["ci_low"], abs=1e-4)
        assert run.data.metrics[f"{group}/test/accuracy/ci_high"] == pytest.approx(row["ci_high"], abs=1e-4)
    assert not any("test/loss" in key for key in run.data.metrics)
    # The artifacts are rebuilt from the store alone: the logged JSON is what a new compare prints.
    logged = Path(store.client.download_artifacts(parent, "comparison/table.json", str(tmp_path)))
    assert json.loads(logged.read_text()) == json.loads(out)
    table = Path(store.client.download_artifacts(parent, "comparison/table.md", str(tmp_path))).read_text()
    assert "| focal |" in table and BETTER in table


def test_csv_and_markdown_formats_and_the_latest_sweep_by_default(
    store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    older = store.sweep(classification_runs(seeds=1))
    latest = store.sweep(classification_runs())
    csv_out = store.compare(
        capsys, "--mean-over", "seed", "--format", "csv", "--no-log", "--output", str(tmp_path / "x.png")
    )
    header, *lines = csv_out.strip().splitlines()
    assert header.startswith("group,metric,direction,n,mean,std,ci_low,ci_high,") and "p_adjusted" in header
    assert len(lines) == 3 and lines[1].startswith(f"focal,test/accuracy,higher,{SEEDS},")  # the latest sweep
    markdown = store.compare(capsys, latest, "--mean-over", "seed", "--format", "markdown", "--no-log")
    assert markdown.startswith("| group | status | n |") and "Sweep" not in markdown
    assert store.client.list_artifacts(latest, "comparison") == []  # --no-log
    assert "3 groups from 3 runs" in store.compare(capsys, "--sweep", older, "--mean-over", "seed", "--no-log")


def test_one_seed_per_group_prints_means_without_intervals_and_says_why(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = store.sweep(classification_runs(seeds=1))
    out = store.compare(capsys, parent, "--mean-over", "seed", "--no-log")
    assert "3 groups from 3 runs" in out
    assert "Groups with n = 1 show a mean without interval or verdict" in out
    focal = next(line for line in out.splitlines() if line.startswith("| focal | 1 |"))
    assert " ± " not in focal and "[" not in focal.split("|")[4]
    assert focal.endswith(f"| {too_few_runs(7)} |")  # two comparisons, paired


def test_without_mean_over_every_run_is_a_row_named_by_its_run(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = store.sweep(classification_runs(seeds=2))
    out = store.compare(capsys, parent, "--no-log")
    assert f"Sweep {parent} (loss=... seed=...): 6 runs" in out
    assert "| cross_entropy-digits-0 | FINISHED |" in out
    assert "No baseline: 2 groups trained cross_entropy" in out and "--mean-over seed" in out


def test_the_readme_regression_command_keeps_working(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [
        {
            "params": {"loss.name": loss, "seed": str(seed)},
            "metrics": {"test/mae": mae + 0.01 * seed, "test/rmse": 2 * mae},
        }
        for loss, mae in (("l1", 0.13), ("huber", 0.42), ("l2", 2.1))
        for seed in range(3)
    ]
    store.sweep(runs)
    out = store.compare(capsys, "--mean-over", "seed", "--metrics", "test/mae,test/rmse", "--no-log")
    assert "| group | status | n | loss.name | test/mae ↓ | test/rmse ↓ |" in out
    assert "| l1 | FINISHED | 3 | l1 | 0.1400 ± 0.0100 | 0.2600 ± 0.0000 |" in out
    assert "No baseline: no group trained cross_entropy" in out
    out = store.compare(capsys, "--mean-over", "seed", "--metrics", "test/mae", "--baseline", "l2", "--no-log")
    assert "### test/mae ↓ — against l2" in out and too_few_runs(7) in out


def test_a_baseline_by_loss_name_or_full_label_and_an_unknown_one(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = classification_runs(seeds=2)
    runs += [{"params": {**run["params"], "optimizer.lr": "0.01"}, "metrics": run["metrics"]} for run in runs[:2]]  # type: ignore[dict-item]
    parent = store.sweep(runs)
    with pytest.raises(SystemExit, match=r"--baseline cross_entropy matches 2 groups"):
        compare_command.main(
            [parent, "--tracking-uri", store.uri, "--mean-over", "seed", "--baseline", "cross_entropy"]
        )
    out = store.compare(
        capsys, parent, "--mean-over", "seed", "--baseline", "cross_entropy (optimizer.lr=0.01)", "--no-log"
    )
    assert "— against cross_entropy (optimizer.lr=0.01)" in out
    assert "against hinge" in store.compare(capsys, parent, "--mean-over", "seed", "--baseline", "hinge", "--no-log")
    with pytest.raises(SystemExit, match="Did you mean 'hinge'"):
        compare_command.main([parent, "--tracking-uri", store.uri, "--mean-over", "seed", "--baseline", "hinje"])
    out = store.compare(capsys, parent, "--mean-over", "seed", "--baseline", "none", "--no-log")
    assert "against" not in out and "verdict" not in out


def test_the_loss_is_refused_and_an_unknown_metric_needs_a_direction(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = classification_runs(seeds=2)
    for run in runs:
        run["metrics"] = {**run["metrics"], "test/brier": 0.1}  # type: ignore[dict-item]
    parent = store.sweep(runs)
    base = [parent, "--tracking-uri", store.uri, "--mean-over", "seed", "--no-log"]
    with pytest.raises(SystemExit, match="'test/loss' cannot be compared across rows"):
        compare_command.main([*base, "--metrics", "test/loss"])
    with pytest.raises(SystemExit, match="--higher-is-better test/brier"):
        compare_command.main([*base, "--metrics", "test/brier"])
    with pytest.raises(SystemExit, match="Did you mean 'test/accuracy'"):
        compare_command.main([*base, "--metrics", "test/acuracy"])
    assert "test/brier (direction unknown" in store.compare(capsys, *base[:1], *base[3:])
    out = store.compare(capsys, *base[:1], *base[3:], "--lower-is-better", "test/brier")
    assert "test/brier ↓" in out


def test_the_plot_draws_every_seed_and_the_mean_with_its_interval() -> None:
    rows = verdict_table(
        {"cross_entropy": {0: 0.90, 1: 0.91, 2: 0.92}, "focal": {0: 0.93, 1: 0.95, 2: 0.94}, "one": {0: 0.9}},
        metric="test/accuracy",
        baseline="cross_entropy",
    )
    figure = dashboard.verdict_figure({"test/accuracy": rows})
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    dots = [collection.get_offsets() for collection in axes.collections if len(collection.get_offsets()) > 1]
    assert [len(points) for points in dots][:2] == [3, 3]  # each seed of the first two groups
    labels = [label.get_text() for label in axes.get_xticklabels()]
    assert labels[0] == "cross_entropy\n(baseline)" and labels[2] == "one\ntoo few runs"
    assert len(axes.containers) == 2  # error bars for the groups with an interval, none for n = 1
    assert axes.get_title() == "test/accuracy ↑"


def test_group_labels_tell_groups_apart_and_are_safe_mlflow_metric_names() -> None:
    rows = [
        compare.Row(f"r{i}", "FINISHED", {"loss.name": "focal", "loss.gamma": gamma, "seed": seed}, {"test/ece": 0.1})
        for i, (gamma, seed) in enumerate([("0.5", "0"), ("0.5", "1"), ("2.0", "0"), ("2.0", "1")])
    ]
    groups = compare.group_runs(rows, "seed")
    assert [group.label for group in groups] == ["focal (loss.gamma=0.5)", "focal (loss.gamma=2.0)"]
    tables = compare.verdict_tables(groups, ["test/ece"], baseline=None)
    assert set(dashboard.group_metrics(tables)) == {
        f"focal_loss.gamma_{gamma}/test/ece{suffix}"
        for gamma in ("0.5", "2.0")
        for suffix in ("", "/ci_low", "/ci_high")
    }


def test_a_failed_run_leaves_its_group_with_fewer_values_compared_unpaired(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = classification_runs(seeds=4)
    runs.append(
        {"params": {"loss.name": "focal", "seed": "4", "optimizer.lr": "0.001"}, "metrics": {}, "status": "FAILED"}
    )
    runs += [{"params": {**run["params"], "seed": "4"}, "metrics": run["metrics"]} for run in runs[:1]]  # type: ignore[dict-item]
    parent = store.sweep(runs)
    out = store.compare(capsys, parent, "--mean-over", "seed", "--format", "json", "--no-log")
    rows = {row["group"]: row for row in json.loads(out)}
    assert (rows["cross_entropy"]["n"], rows["focal"]["n"], rows["focal"]["paired"]) == (5, 4, False)
    table = store.compare(capsys, parent, "--mean-over", "seed", "--no-log")
    assert "| focal | MIXED | 5 |" in table and "unpaired (Welch)" in table


def test_across_datasets_ranks_the_losses_and_draws_the_critical_difference(
    store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from lossforge.evaluation.statistics import friedman_nemenyi

    sweeps, expected = [], {}
    for index, dataset in enumerate(("digits_a", "digits_b", "digits_c", "digits_d")):
        runs = classification_runs(seeds=2)
        for run in runs:
            run["params"] = {**run["params"], "dataset.name": dataset}  # type: ignore[dict-item]
            run["metrics"] = {**run["metrics"], "test/accuracy": run["metrics"]["test/accuracy"] - 0.01 * index}  # type: ignore[index]
        if index == 0:  # a loss run on one dataset only
            only_here = {"loss.name": "only_here", "seed": "0", "dataset.name": dataset}
            runs.append({"params": only_here, "metrics": {"test/accuracy": 1.0}})
        sweeps.append(store.sweep(runs))
        for run in runs:
            params, metrics = run["params"], run["metrics"]
            expected.setdefault(params["loss.name"], {}).setdefault(dataset, []).append(metrics["test/accuracy"])  # type: ignore[index]
    out = store.compare(
        capsys, "--across", ",".join(sweeps), "--metrics", "test/accuracy", "--output", str(tmp_path / "cd.png")
    )
    means = {
        loss: {d: sum(v) / len(v) for d, v in values.items()}
        for loss, values in expected.items()
        if loss != "only_here"
    }
    result = friedman_nemenyi(means, metric="test/accuracy")
    assert "3 losses on 4 datasets (digits_a, digits_b, digits_c, digits_d), by test/accuracy" in out
    assert next(iter(result.average_ranks)) == "focal" and "| focal | 1.00 |" in out  # better on every dataset
    assert f"p = {result.p_value:.3g}" in out and f"{result.critical_difference:.3f}" in out
    assert "Left out (not run on every dataset): only_here." in out
    assert (tmp_path / "cd.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="name the one metric to rank by"):
        compare_command.main(["--across", sweeps[0], "--tracking-uri", store.uri])
    with pytest.raises(SystemExit, match="at least 2 datasets"):
        compare_command.main(["--across", sweeps[0], "--metrics", "test/accuracy", "--tracking-uri", store.uri])


def test_the_library_returns_a_report_whose_renderers_are_what_the_command_prints(
    store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``compare(...)`` is what ``lossforge compare``, a sweep's end and ``lossforge benchmark`` call: it returns
    the groups, a verdict table per metric and the figure, and raises ``ComparisonError`` (no exit) when it
    cannot compare."""
    parent = store.sweep(classification_runs())
    report = compare.compare(parent, tracking_uri=store.uri, mean_over="seed", log=False)
    assert isinstance(report, compare.ComparisonReport) and report.run_id == parent and not report.logged
    assert [group.label for group in report.groups] == ["cross_entropy", "focal", "hinge"]
    verdicts = {row.group: row.verdict for row in report.tables["test/accuracy"]}
    assert verdicts["focal"] == BETTER and verdicts["hinge"] == NO_DIFFERENCE
    assert isinstance(report.figure, Figure) and report.save_figure(tmp_path / "r.png") == tmp_path / "r.png"
    assert report.footer(None) == []  # nothing logged, no plot written: nothing to say
    printed = store.compare(capsys, parent, "--mean-over", "seed", "--no-log")
    assert printed.startswith(report.to_text() + "\n")
    assert json.loads(report.render("json")) == json.loads(report.to_json())
    assert report.to_csv().splitlines()[0].startswith("group,metric,")
    assert not store.client.list_artifacts(parent)  # log=False left the parent run alone
    with pytest.raises(compare.ComparisonError, match="Did you mean 'hinge'"):
        compare.compare(parent, tracking_uri=store.uri, mean_over="seed", baseline="hinje", log=False)
    with pytest.raises(ValueError, match="Expected `format`"):
        report.render("yaml")


def test_an_unknown_run_id_and_a_misspelt_mean_over_are_one_line_each(store: Store) -> None:
    parent = store.sweep(classification_runs(seeds=2))
    with pytest.raises(compare.ComparisonError, match=r"no run '0123abc' in sqlite:///.*mlflow\.db\. A sweep's parent"):
        compare.compare("0123abc", tracking_uri=store.uri, log=False)
    with pytest.raises(compare.ComparisonError, match=r"no run has a parameter 'seeds'\. Did you mean 'seed'\?"):
        compare.compare(parent, tracking_uri=store.uri, mean_over="seeds", log=False)
    assert compare.compare(parent, tracking_uri=store.uri, mean_over="seed", log=False).groups  # spelt right: fine


def test_where_no_store_exists_compare_says_where_it_looked_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(compare.ComparisonError, match=r"no MLflow store at .*outputs/mlflow\.db \(looked there: the"):
        compare.compare(base_dir=tmp_path, log=False)
    missing = tmp_path / "elsewhere.db"
    with pytest.raises(compare.ComparisonError, match=r"elsewhere\.db \(looked there: --tracking-uri"):
        compare.compare(tracking_uri=f"sqlite:///{missing}", base_dir=tmp_path, log=False)
    assert list(tmp_path.iterdir()) == []  # no store, no lock file, no outputs folder
