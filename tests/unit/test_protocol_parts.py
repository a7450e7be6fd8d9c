"""The comparison protocol's parts: entries, budgets, the trial store, the pruning callback."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from lossforge.protocol.plan import BUDGETS, Budget, Entry
from lossforge.protocol.tuning import PruneOnValidation, TrialStore


def test_entries_parse_a_loss_or_a_loss_with_its_miner() -> None:
    assert Entry.parse("focal") == Entry("focal") and Entry.parse("focal").overrides() == ["loss=focal"]
    entry = Entry.parse(" triplet+semihard_triplets ")
    assert entry.label == "triplet+semihard_triplets"
    assert entry.overrides() == ["loss=triplet", "miner=semihard_triplets"]
    with pytest.raises(ValueError, match="Expected a loss name or 'loss\\+miner', got 'focal loss'"):
        Entry.parse("focal loss")


def test_budgets_are_checked_and_the_default_has_the_recommended_seeds() -> None:
    from lossforge.evaluation.statistics import RECOMMENDED_SEEDS

    assert BUDGETS["default"].seeds == RECOMMENDED_SEEDS
    assert BUDGETS["tiny"].trials * BUDGETS["tiny"].seeds <= 4  # a test-sized budget
    with pytest.raises(ValueError, match=">= 1 trial and >= 1 seed, got 0 and 3"):
        Budget(trials=0, seeds=3)
    with pytest.raises(ValueError, match="`max_epochs` >= 1 or None"):
        Budget(trials=1, seeds=1, max_epochs=0)


def _study_with_finished_trials() -> optuna.Study:
    study = optuna.create_study(direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("loss.gamma", 0.0, 5.0)
        trial.suggest_float("optimizer.lr", 1e-4, 1e-2, log=True)
        if trial.number == 1:
            trial.set_user_attr("error", "FloatingPointError: nan")
            raise FloatingPointError("nan")
        trial.report(x / 2, step=0)
        if trial.number == 2:
            raise optuna.TrialPruned()
        return x

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=3, catch=(Exception,))
    return study


def test_the_trial_store_gives_a_new_study_the_same_trials_back(tmp_path: Path) -> None:
    study = _study_with_finished_trials()
    store = TrialStore(tmp_path / "outputs" / "tuning.db")
    for trial in study.trials:
        store.save("comparison/focal", trial)
    store.save("comparison/focal", study.trials[0])  # saved twice: still one row
    loaded = store.load("comparison/focal")
    assert [trial.state for trial in loaded] == [trial.state for trial in study.trials]
    assert [trial.params for trial in loaded] == [trial.params for trial in study.trials]
    assert loaded[0].value == study.trials[0].value and loaded[2].intermediate_values == {
        0: study.trials[2].params["loss.gamma"] / 2
    }
    assert loaded[1].user_attrs == {"error": "FloatingPointError: nan"}
    assert store.load("comparison/other") == []
    resumed = optuna.create_study(direction="maximize")
    for trial in loaded:
        resumed.add_trial(trial)
    assert resumed.best_trial.params == study.best_trial.params  # the sampler and the pruner see them as their own


class FakeTrainer:
    def __init__(self, metrics: dict[str, float], epoch: int, sanity_checking: bool = False) -> None:
        import torch

        self.callback_metrics = {key: torch.tensor(value) for key, value in metrics.items()}
        self.current_epoch = epoch
        self.sanity_checking = sanity_checking


def test_pruning_reports_each_epoch_and_stops_a_trial_behind_the_median() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    for value in (0.9, 0.8):  # two earlier trials that scored well at epoch 0
        trial = study.ask()
        trial.report(value, 0)
        study.tell(trial, value)
    trial = study.ask()
    callback = PruneOnValidation(trial, "val/f1_macro")
    callback.on_validation_end(FakeTrainer({"val/f1_macro": 0.1}, epoch=0, sanity_checking=True), None)  # type: ignore[arg-type]
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {}  # the sanity check is not an epoch
    with pytest.raises(optuna.TrialPruned, match=r"epoch 0: val/f1_macro = 0\.1000"):
        callback.on_validation_end(FakeTrainer({"val/f1_macro": 0.1}, epoch=0), None)  # type: ignore[arg-type]


def test_metric_learning_is_tuned_and_tested_on_unseen_classes() -> None:
    from helpers import compose_config

    from lossforge.protocol.runner import _open_set

    digits = compose_config("dataset=digits")
    overrides, folds = _open_set(digits, 10, embedding=True, class_folds=0)
    assert overrides == ["dataset.held_out_classes=[7, 8, 9]"] and folds == [[5, 6]]
    overrides, folds = _open_set(digits, 10, embedding=True, class_folds=3)
    assert folds == [[0, 3, 6], [1, 4], [2, 5]]  # a partition of the seven training classes
    chosen = compose_config("dataset=digits", "dataset.held_out_classes=[0,1]")
    assert _open_set(chosen, 10, embedding=True, class_folds=0) == (["dataset.held_out_classes=[0, 1]"], [[8, 9]])
    assert _open_set(digits, 10, embedding=False, class_folds=0) == ([], [])  # classifiers: the usual split
    with pytest.raises(ValueError, match="--class-folds is for metric learning"):
        _open_set(digits, 10, embedding=False, class_folds=2)
    with pytest.raises(ValueError, match="--class-folds 3 needs 2 classes per fold"):
        _open_set(chosen, 4, embedding=True, class_folds=3)
