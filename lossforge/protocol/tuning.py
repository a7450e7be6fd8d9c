"""One entry's tuning study: the same number of Optuna trials for every loss, scored on validation only.

A trial samples the shared optimizer space and the loss's (and miner's) declared search space, trains
on the training split with :func:`lossforge.training.run.fit_for_validation` (no test pass, no MLflow
run), and returns the last epoch's validation score. A median pruner stops trials whose per-epoch score
falls behind; a trial that fails (a NaN loss, an error in a plugin) is recorded as failed with its reason
and the study goes on. Every finished trial is kept in SQLite (:class:`TrialStore`), so a killed
comparison resumes with the trials it had.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from omegaconf import DictConfig, OmegaConf

from lossforge.contract import parse_search_space, search_space, suggest
from lossforge.protocol.plan import SHARED_SPACE, Budget
from lossforge.registry import LOSSES, MINERS
from lossforge.training.run import fit_for_validation

log = logging.getLogger("lossforge.protocol")

#: Trial states that use up part of the budget (a trial whose process was killed never finished: it does not).
_SPENT = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


class TrialStore:
    """Finished trials of every study, in one SQLite file beside the MLflow store.

    Optuna's own RDB storage would do this, but the Optuna that Hydra's Optuna sweeper allows (< 3) fails
    on SQLAlchemy 2, which MLflow needs (``RDBStorage`` asserts on its alembic version table). So each
    finished trial is written here, and a resumed study is an in-memory study given its trials back with
    ``Study.add_trial`` — which the sampler and the pruner use like their own. Works with Optuna 2 and later.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS trials (study TEXT, number INTEGER, state TEXT, value REAL, "
                "params TEXT, distributions TEXT, intermediate TEXT, user_attrs TEXT, PRIMARY KEY (study, number))"
            )

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as connection, connection:
            yield connection

    def save(self, study: str, trial: optuna.trial.FrozenTrial) -> None:
        """Keep a finished trial (called after each trial of ``study``)."""
        distributions = {
            name: optuna.distributions.distribution_to_json(distribution)
            for name, distribution in trial.distributions.items()
        }
        row = (
            study,
            trial.number,
            trial.state.name,
            trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
            json.dumps(trial.params),
            json.dumps(distributions),
            json.dumps({str(step): value for step, value in trial.intermediate_values.items()}),
            json.dumps(trial.user_attrs),
        )
        with self._connection() as connection:
            connection.execute("INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def load(self, study: str) -> list[optuna.trial.FrozenTrial]:
        """The finished trials of ``study``, in their order, as Optuna trials to add to a new study."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT state, value, params, distributions, intermediate, user_attrs FROM trials "
                "WHERE study = ? ORDER BY number",
                (study,),
            ).fetchall()
        trials = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for state, value, params, distributions, intermediate, user_attrs in rows:
                trials.append(
                    optuna.trial.create_trial(
                        state=optuna.trial.TrialState[state],
                        value=value,
                        params=json.loads(params),
                        distributions={
                            name: optuna.distributions.json_to_distribution(text)
                            for name, text in json.loads(distributions).items()
                        },
                        intermediate_values={int(step): v for step, v in json.loads(intermediate).items()},
                        user_attrs=json.loads(user_attrs),
                    )
                )
        return trials


class PruneOnValidation(L.Callback):
    """Report each epoch's validation score to the trial; stop the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: {self.monitor} = {value:.4f}")


@dataclass
class Tuned:
    """What a study found: the best configuration (overrides such as ``loss.gamma``), its validation
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
    the miner's declared spaces (``loss.<param>``, ``miner.<param>``)."""
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
    store: TrialStore,
    study_name: str,
    monitor: str,
    maximize: bool,
    pruner: bool = True,
    seed: int = 0,
    class_folds: Sequence[Sequence[int]] = (),
) -> Tuned:
    """Run (or resume) the study of one entry until it has ``budget.trials`` finished trials.

    Args:
        cfg: the entry's composed config (its loss and miner chosen); each trial changes a copy.
        label: the entry's name, for messages.
        budget: the number of trials.
        store: where finished trials are kept (SQLite beside the MLflow store).
        study_name: the study's name in that store; the same name resumes it.
        monitor: the validation metric, e.g. ``val/f1_macro``.
        maximize: whether higher is better.
        pruner: stop poor trials early with a median pruner (off: every trial runs all its epochs).
        seed: the sampler's seed.
        class_folds: metric learning, k-fold over class partitions: a trial trains once per fold, with that
            fold's classes as its class-disjoint validation split (``dataset.val_classes``), and scores the
            mean; the pruner watches the first fold. Empty: one training run on the configured split.
    """
    spaces = component_spaces(cfg)
    if not [key for key in spaces if key.startswith(("loss.", "miner."))]:
        log.warning("tune     %s declares no search space: tuned over the learning rate and weight decay only", label)
    epochs = int(cfg.trainer.max_epochs)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=(
            optuna.pruners.MedianPruner(n_startup_trials=max(2, budget.trials // 4), n_warmup_steps=max(1, epochs // 4))
            if pruner
            else optuna.pruners.NopPruner()
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for trial in store.load(study_name):
            study.add_trial(trial)
    spent = len(study.get_trials(deepcopy=False, states=_SPENT))
    remaining = budget.trials - spent
    if remaining > 0:
        log.info("tune     %s: %d trial(s) to run (%d done)", label, remaining, spent)

        def objective(trial: optuna.Trial) -> float:
            trial_cfg = copy.deepcopy(cfg)
            for key, prior in spaces.items():
                OmegaConf.update(trial_cfg, key, suggest(trial, key, prior), merge=False)
            scores = []
            for fold, classes in enumerate(class_folds or [None]):
                fold_cfg = copy.deepcopy(trial_cfg)
                if classes is not None:
                    OmegaConf.update(fold_cfg, "dataset.val_classes", list(classes), merge=False)
                callbacks = [PruneOnValidation(trial, monitor)] if fold == 0 else []
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

        keep = [lambda _, trial: store.save(study_name, trial)]
        study.optimize(objective, n_trials=remaining, catch=(Exception,), callbacks=keep)
    return _tuned(study, tuple(key for key in spaces))


def _tuned(study: optuna.Study, parameters: tuple[str, ...]) -> Tuned:
    trials = [
        {
            "trial": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "epochs": len(trial.intermediate_values),
            **trial.params,
            "error": trial.user_attrs.get("error", ""),
        }
        for trial in study.get_trials(deepcopy=False, states=_SPENT)
    ]
    completed = [trial for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    if not completed:
        return Tuned(best_params={}, best_value=None, trials=trials, tuned_parameters=parameters)
    best = study.best_trial
    return Tuned(best_params=dict(best.params), best_value=best.value, trials=trials, tuned_parameters=parameters)
