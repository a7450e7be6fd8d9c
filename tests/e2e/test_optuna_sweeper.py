"""``hparams_search=…`` end to end on lossforge's own Optuna sweeper: the study in Optuna's storage, the
jobs reporting their epochs to it, the exact budget, a resumed search, the parallel launcher as workers."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from helpers import default_store_runs, run_lossforge

pytestmark = pytest.mark.slow

TINY = ["trainer.max_epochs=2", "model.hidden=[16]", "trainer.enable_progress_bar=false"]


def _study(tmp_path: Path) -> optuna.Study:
    storage = f"sqlite:///{tmp_path / 'outputs' / 'tuning.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)  # one study, readable by Optuna itself
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def test_a_search_tunes_on_validation_resumes_with_a_larger_budget_and_runs_on_the_parallel_launcher(
    tmp_path: Path,
) -> None:
    result = run_lossforge(tmp_path, "-m", "hparams_search=huber_optuna", "hydra.sweeper.n_trials=2", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    study = _study(tmp_path)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(sorted(trial.intermediate_values) == [0, 1] for trial in study.trials)  # each job reported its epochs
    assert study.study_name == "sweep " + " ".join(sorted(["hparams_search=huber_optuna", *TINY]))
    _, runs = default_store_runs(tmp_path)
    children = [run for run in runs if run.data.tags.get("lossforge.sweep") != "parent"]
    assert sorted(float(run.data.params["loss.delta"]) for run in children) == sorted(
        trial.params["loss.delta"] for trial in study.trials
    )
    assert not any(key.startswith("tuning_trial") for run in children for key in run.data.params)  # not config
    (results,) = (tmp_path / "outputs" / "multirun").glob("*/*/optimization_results.yaml")
    best = yaml.safe_load(results.read_text())
    assert best["best_value"] == pytest.approx(min(run.data.metrics["val/mae"] for run in children))
    assert best["best_value"] == pytest.approx(study.best_value)

    # The same command with a larger budget continues the study: two more trials, as one batch of two jobs on
    # the parallel launcher's workers (a Hydra override: the study is the same).
    more = ["hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
    result = run_lossforge(tmp_path, "-m", "hparams_search=huber_optuna", *more, *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "continues its study, 2 of 4 trials done" in result.stdout + result.stderr
    study = _study(tmp_path)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert all(sorted(trial.intermediate_values) == [0, 1] for trial in study.trials)
    assert len({trial.params["loss.delta"] for trial in study.trials}) == 4  # the resumed sampler moved on
    _, runs = default_store_runs(tmp_path)
    assert len([run for run in runs if run.data.tags.get("lossforge.sweep") != "parent"]) == 4

    # Finished: the same command again runs nothing.
    result = run_lossforge(tmp_path, "-m", "hparams_search=huber_optuna", "hydra.sweeper.n_trials=4", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reuses its study, 4 of 4 trials done" in result.stdout + result.stderr and len(_study(tmp_path).trials) == 4
