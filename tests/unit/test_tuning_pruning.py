"""A trial's training reports every epoch's validation score to its Optuna trial and is pruned
(lossforge.training.pruning): in-process (the protocol) it raises, as a sweep job it stops and says so in
the study's storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from lossforge.protocol.studies import prepare_storage
from lossforge.training.pruning import ReportToTrial, median_pruner, storage_url, trial_of_job

optuna.logging.set_verbosity(optuna.logging.WARNING)


class FakeTrainer:
    def __init__(self, metrics: dict[str, float], epoch: int, sanity_checking: bool = False) -> None:
        import torch

        self.callback_metrics = {key: torch.tensor(value) for key, value in metrics.items()}
        self.current_epoch = epoch
        self.sanity_checking = sanity_checking
        self.should_stop = False


def _study_with_two_good_trials(storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    study = optuna.create_study(direction="maximize", storage=storage, pruner=median_pruner(1, 0), study_name="s")
    for value in (0.9, 0.8):  # two earlier trials that scored well at epochs 0 and 1
        trial = study.ask()
        trial.report(value, 0)
        trial.report(value, 1)
        study.tell(trial, value)
    return study


def test_pruning_reports_each_epoch_and_stops_a_trial_behind_the_median() -> None:
    trial = _study_with_two_good_trials().ask()
    callback = ReportToTrial(trial, "val/f1_macro")
    callback.on_validation_end(FakeTrainer({"val/f1_macro": 0.1}, epoch=0, sanity_checking=True), None)  # type: ignore[arg-type]
    assert trial.study.trials[-1].intermediate_values == {}  # the sanity check is not an epoch
    callback.on_validation_end(FakeTrainer({"val/f1_macro": float("nan")}, epoch=0), None)  # type: ignore[arg-type]
    assert trial.study.trials[-1].intermediate_values == {}  # a NaN is the guard's business, not the pruner's
    with pytest.raises(optuna.TrialPruned, match=r"epoch 0: val/f1_macro = 0\.1000"):
        callback.on_validation_end(FakeTrainer({"val/f1_macro": 0.1}, epoch=0), None)  # type: ignore[arg-type]


def test_a_sweep_job_finds_its_trial_in_the_storage_marks_it_pruned_and_stops(tmp_path: Path) -> None:
    url = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    from lossforge.training.pruning import open_storage

    study = _study_with_two_good_trials(open_storage(url))
    asked = study.ask()  # the sweeper's side: the trial, then a job with these overrides
    values = {"storage": url, "study": "s", "trial_id": asked._trial_id, "monitor": "val/f1_macro",
              "n_startup_trials": 1, "n_warmup_steps": 1}  # fmt: skip
    assert trial_of_job(None) is None and trial_of_job({}) is None  # any other job: no callback
    callback = trial_of_job(values)
    assert callback is not None and callback.stop
    warming_up = FakeTrainer({"val/f1_macro": 0.5}, epoch=0)  # behind already, but epoch 0 is the warm-up
    callback.on_validation_end(warming_up, None)  # type: ignore[arg-type]
    assert not warming_up.should_stop and study.trials[-1].intermediate_values == {0: 0.5}  # in the storage
    poor = FakeTrainer({"val/f1_macro": 0.125}, epoch=1)
    callback.on_validation_end(poor, None)  # type: ignore[arg-type]
    assert poor.should_stop and callback.pruned_at == 1
    assert study.trials[-1].state == optuna.trial.TrialState.PRUNED  # told by the job itself
    later = FakeTrainer({"val/f1_macro": 0.125}, epoch=2)
    callback.on_validation_end(later, None)  # type: ignore[arg-type]  # (min_epochs): nothing more reported
    assert study.trials[-1].intermediate_values == {0: 0.5, 1: 0.125}


def test_a_sweep_without_pruner_reports_every_epoch_and_stops_no_job(tmp_path: Path) -> None:
    url = prepare_storage(storage_url(str(tmp_path / "tuning.db")))
    from lossforge.training.pruning import open_storage

    study = _study_with_two_good_trials(open_storage(url))
    asked = study.ask()
    callback = trial_of_job({"storage": url, "study": "s", "trial_id": asked._trial_id, "monitor": "val/f1_macro",
                             "n_startup_trials": 1, "n_warmup_steps": 0, "prune": False})  # fmt: skip
    assert callback is not None
    poor = FakeTrainer({"val/f1_macro": 0.125}, epoch=1)
    callback.on_validation_end(poor, None)  # type: ignore[arg-type]
    assert not poor.should_stop and study.trials[-1].state == optuna.trial.TrialState.RUNNING
    assert study.trials[-1].intermediate_values == {1: 0.125}
