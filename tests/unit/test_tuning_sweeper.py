"""lossforge's Optuna sweeper (hydra_plugins.lossforge_optuna): Hydra's sweep syntax as Optuna distributions,
the configured space merged with the command's, and the overrides it writes for its jobs."""

from __future__ import annotations

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.lossforge_optuna.optuna_sweeper import OptunaSweeper, distribution, quoted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interval(0, 5)", FloatDistribution(0.0, 5.0)),
        ("tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 1e-1, log=True)),
        ("range(1, 10, 3)", IntDistribution(1, 7, step=3)),  # stop excluded, as Python's range: 1, 4, 7
        ("range(0, 1, 0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
        ("choice(sgd, adam)", CategoricalDistribution(["sgd", "adam"])),
        ("1,2,4", CategoricalDistribution([1, 2, 4])),
    ],
)
def test_hydras_sweep_syntax_becomes_optuna_distributions(text: str, expected: object) -> None:
    (override,) = OverridesParser.create().parse_overrides([f"key={text}"])
    assert distribution(override) == expected


def test_the_command_line_adds_to_and_overrides_the_configured_space() -> None:
    sweeper = OptunaSweeper(params=OmegaConf.create({"loss.gamma": "interval(0, 5)", "optimizer.lr": "interval(0, 1)"}))
    fixed, space = sweeper.search_space(["loss=focal", "optimizer.lr=tag(log, interval(1e-4, 1e-2))", "seed=0,1"])
    assert fixed == ["loss=focal"]
    assert space == {
        "loss.gamma": FloatDistribution(0.0, 5.0),
        "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "seed": CategoricalDistribution([0, 1]),
    }


def test_a_storage_url_travels_to_a_job_as_one_quoted_override_value() -> None:
    text = "sqlite:////data/it's here/tuning.db"
    (override,) = OverridesParser.create().parse_overrides([f"+tuning_trial.storage={quoted(text)}"])
    assert override.value() == text


def test_a_bad_setting_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="direction: expected minimize or maximize, got 'up'"):
        OptunaSweeper(direction="up")
    with pytest.raises(ValueError, match="expected n_trials >= 1 and n_jobs >= 1, got 0 and 1"):
        OptunaSweeper(n_trials=0)
    with pytest.raises(ValueError, match=r"sampler._target_: expected one of optuna.samplers.\w+"):
        OptunaSweeper(sampler=OmegaConf.create({"_target_": "os.system"}))._sampler(0)
    resumed = OptunaSweeper(sampler=OmegaConf.create({"seed": 3}))._sampler(2)  # a study with 2 trials: seed 5
    assert resumed._rng.rng.randint(1000) == optuna.samplers.TPESampler(seed=5)._rng.rng.randint(1000)
