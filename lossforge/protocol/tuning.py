"""One entry's tuning study: the same number of Optuna trials for every loss, scored on validation only.

A trial samples the shared optimizer space and the loss's (and miner's) declared search space, trains
on the training split with [lossforge.training.run.fit_for_validation][] (no test pass, no MLflow
run), and returns the last epoch's validation score. A median pruner stops trials whose per-epoch score
falls behind; a trial that fails (a NaN loss, an error in a plugin) is recorded as failed with its reason
and the study goes on.

The trials live in Optuna's own storage ([prepare_storage][lossforge.protocol.studies.prepare_storage]):
`outputs/tuning.db` (SQLite) by default, or any storage `--storage` names — PostgreSQL, or Optuna's journal file for
shared file systems — so `optuna.load_study`, `optuna.get_all_study_summaries` and optuna-dashboard read them, and a
killed comparison resumes with the trials it had. The budget is exact: complete, pruned and failed trials count; a
trial its process never finished (`kill -9`) is marked failed with `lossforge.interrupted` and run again.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from lossforge.contract import parse_search_space, search_space, suggest
from lossforge.protocol.plan import SHARED_SPACE, Budget
from lossforge.protocol.studies import open_study, seeded
from lossforge.protocol.trials import (
    GRACE,
    HEARTBEAT,
    remaining_trials,
    run_trials,
    spent_trials,
    storage_lock,
)
from lossforge.registry import LOSSES, MINERS
from lossforge.training.pruning import ReportToTrial, median_pruner
from lossforge.training.run import fit_for_validation

log = logging.getLogger("lossforge.protocol")


@dataclass
class Tuned:
    """What a study found: the best configuration (overrides such as `loss.gamma`), its validation
    score, and every trial as a row of the trials table."""

    best_params: dict[str, Any]
    best_value: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    tuned_parameters: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """Every trial failed: nothing to retrain."""
        return self.best_value is None

    def count(self, state: str) -> int:
        return sum(trial["state"] == state for trial in self.trials)


def component_spaces(cfg: DictConfig) -> dict[str, Any]:
    """The priors a trial samples, keyed by config path: the shared optimizer space, then the loss's and
    the miner's declared spaces (`loss.<param>`, `miner.<param>`)."""
    spaces: dict[str, Any] = dict(parse_search_space(SHARED_SPACE, owner="the shared optimizer space"))
    spaces.update({f"loss.{name}": prior for name, prior in search_space(LOSSES.load(cfg.loss.name)).items()})
    if cfg.get("miner") is not None:
        miner_space = search_space(MINERS.load(cfg.miner.name))
        spaces.update({f"miner.{name}": prior for name, prior in miner_space.items()})
    return spaces


def tune(
    cfg: DictConfig,
    *,
    label: str,
    budget: Budget,
    storage: str,
    study_name: str,
    monitor: str,
    maximize: bool,
    pruner: bool = True,
    seed: int = 0,
    class_folds: Sequence[Sequence[int]] = (),
) -> Tuned:
    """Run (or resume) the study of one entry until it has exactly `budget.trials` trials, in this process.

    Args:
        cfg: the entry's composed config (its loss and miner chosen); each trial changes a copy.
        label: the entry's name, for messages.
        budget: the number of trials (complete, pruned and failed ones count).
        storage: the Optuna storage, a canonical URL (`lossforge.training.pruning.storage_url`) that
            [prepare_storage][lossforge.protocol.studies.prepare_storage] has prepared.
        study_name: the study's name in that storage; the same name resumes it.
        monitor: the validation metric, e.g. `val/f1_macro`.
        maximize: whether higher is better.
        pruner: stop poor trials early with a median pruner (off: every trial runs all its epochs).
        seed: the sampler's seed.
        class_folds: metric learning, k-fold over class partitions: a trial trains once per fold, with that
            fold's classes as its class-disjoint validation split (`dataset.val_classes`), and scores the
            mean; the pruner watches the first fold. Empty: one training run on the configured split.
    """
    tuning = EntryTuning.open(
        cfg,
        label=label,
        budget=budget,
        storage=storage,
        study_name=study_name,
        monitor=monitor,
        maximize=maximize,
        pruner=pruner,
        seed=seed,
        class_folds=class_folds,
    )
    with storage_lock(storage):
        remaining = remaining_trials(tuning.study, budget.trials, label=label, shared=tuning.shared)
    if remaining > 0:
        log.info("tune     %s: %d trial(s) to run", label, remaining)
        run_trials(
            tuning.study,
            tuning.objective,
            budget.trials,
            storage=storage,
            heartbeat_interval=HEARTBEAT if tuning.shared else None,
            sequential=True,
            sampler=tuning.sampler,
        )
    return tuning.tuned()


@dataclass
class EntryTuning:
    """One entry's study, open in this process, and what its trials run: the objective over `spaces`.

    Attributes:
        study: the entry's Optuna study.
        spaces: config key → prior, what a trial samples
            ([component_spaces][lossforge.protocol.tuning.component_spaces]).
        objective: one trial: trains on the training split and returns its validation score.
        sampler: the sampler of trial number `n` (TPE seeded with the seed plus `n`).
        shared: the storage has heartbeats (a database), so workers may share the study.
    """

    study: optuna.Study
    spaces: dict[str, Any]
    objective: Callable[[optuna.Trial], float]
    sampler: Callable[[int], optuna.samplers.BaseSampler]
    shared: bool

    @classmethod
    def open(
        cls,
        cfg: DictConfig,
        *,
        label: str,
        budget: Budget,
        storage: str,
        study_name: str,
        monitor: str,
        maximize: bool,
        pruner: bool = True,
        seed: int = 0,
        class_folds: Sequence[Sequence[int]] = (),
        warn: bool = True,
    ) -> EntryTuning:
        """Open (or create) the entry's study; the arguments are [tune][lossforge.protocol.tuning.tune]'s
        (`warn`: say when the entry declares no search space)."""
        spaces = component_spaces(cfg)
        if warn and not [key for key in spaces if key.startswith(("loss.", "miner."))]:
            log.warning(
                "tune     %s declares no search space: tuned over the learning rate and weight decay only", label
            )
        epochs = int(cfg.trainer.max_epochs)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        shared = not storage.startswith("journal:")  # a database storage has heartbeats: workers may share it

        def sampler(trials: int) -> optuna.samplers.BaseSampler:
            return optuna.samplers.TPESampler(seed=seeded(seed, trials))

        study = open_study(
            storage=storage,
            study_name=study_name,
            maximize=maximize,
            search={key: repr(prior) for key, prior in spaces.items()},
            sampler=sampler,
            pruner=(
                median_pruner(n_startup_trials=max(2, budget.trials // 4), n_warmup_steps=max(1, epochs // 4))
                if pruner
                else optuna.pruners.NopPruner()
            ),
            heartbeat=(HEARTBEAT, GRACE) if shared else None,
        )
        objective = functools.partial(_objective, cfg=cfg, spaces=spaces, monitor=monitor, class_folds=class_folds)
        return cls(study, spaces, objective, sampler, shared)

    def tuned(self) -> Tuned:
        """What the study found so far."""
        return _tuned(self.study, tuple(self.spaces))


def _objective(
    trial: optuna.Trial,
    *,
    cfg: DictConfig,
    spaces: dict[str, Any],
    monitor: str,
    class_folds: Sequence[Sequence[int]],
) -> float:
    trial_cfg = copy.deepcopy(cfg)
    for key, prior in spaces.items():
        OmegaConf.update(trial_cfg, key, suggest(trial, key, prior), merge=False)
    scores = []
    for fold, classes in enumerate(class_folds or [None]):
        fold_cfg = copy.deepcopy(trial_cfg)
        if classes is not None:
            OmegaConf.update(fold_cfg, "dataset.val_classes", list(classes), merge=False)
        callbacks = [ReportToTrial(trial, monitor)] if fold == 0 else []
        try:
            metrics = fit_for_validation(fold_cfg, callbacks=callbacks)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded, and the study goes on
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            raise
        value = metrics.get(monitor)
        if value is None or not math.isfinite(value):
            message = f"no finite {monitor} after training (got {value})"
            trial.set_user_attr("error", message)
            raise ValueError(message)
        scores.append(value)
    return sum(scores) / len(scores)


def _tuned(study: optuna.Study, parameters: tuple[str, ...]) -> Tuned:
    spent = spent_trials(study)
    trials = [
        {
            "trial": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "epochs": len(trial.intermediate_values),
            **trial.params,
            "error": trial.user_attrs.get("error", ""),
        }
        for trial in spent
    ]
    completed = [trial for trial in spent if trial.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return Tuned(best_params={}, best_value=None, trials=trials, tuned_parameters=parameters)
    best = study.best_trial
    return Tuned(best_params=dict(best.params), best_value=best.value, trials=trials, tuned_parameters=parameters)
