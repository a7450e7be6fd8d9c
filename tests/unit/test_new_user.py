"""What a new user tripped on, outside the command line: a run of 0 or -1 epochs, run names without the seed,
losses printed without their parameters, and an experiment the MLflow UI took for a GenAI one."""

from __future__ import annotations

import pytest
from helpers import compose_config, own_loss_names
from mlflow import MlflowClient

from lossforge import build_loss
from lossforge.registry import LOSSES
from lossforge.tracking.store import EXPERIMENT_KIND_TAG, MODEL_TRAINING, get_or_create_experiment
from lossforge.training.build import ConfigError, build
from lossforge.training.run import default_run_name

# -- trainer.max_epochs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("epochs", [0, -1])
def test_a_run_of_no_epochs_or_forever_is_refused_before_training(epochs: int) -> None:
    cfg = compose_config(f"trainer.max_epochs={epochs}")
    with pytest.raises(ConfigError) as error:
        build(cfg)
    assert str(error.value) == (
        f"trainer.max_epochs must be >= 1 (got {epochs}): a run of 0 epochs tests an untrained model; "
        f"-1 (train forever) is not supported"
    )


def test_one_epoch_builds() -> None:
    assert build(compose_config("trainer.max_epochs=1", "model.hidden=[8]")).module is not None


# -- run names ------------------------------------------------------------------------------------------


def test_the_run_name_carries_the_seed_not_the_job_number() -> None:
    assert default_run_name(compose_config("seed=0")) == "cross_entropy-digits-seed0"
    assert default_run_name(compose_config("seed=3")) == "cross_entropy-digits-seed3"
    metric = compose_config("loss=triplet", "miner=semihard_triplets", "seed=1")
    assert default_run_name(metric) == "triplet+semihard_triplets-digits-seed1"


# -- a loss printed in the training log ------------------------------------------------------------------


@pytest.mark.parametrize("name", own_loss_names())
def test_a_loss_repr_shows_every_parameter(name: str) -> None:
    shown = repr(build_loss(name))
    missing = [parameter for parameter in LOSSES.parameters(name) if f"{parameter}=" not in shown]
    assert not missing, f"{name}: {shown} lacks {missing}"


# -- the MLflow UI's experiment kind -----------------------------------------------------------------------


def test_a_new_experiment_is_marked_as_model_training(default_store: str) -> None:
    client = MlflowClient(default_store)
    experiment_id = get_or_create_experiment(client, "lossforge", None)
    assert (
        client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING == "custom_model_development"
    )
    assert get_or_create_experiment(client, "lossforge", None) == experiment_id


def test_an_existing_experiment_without_a_kind_is_marked(default_store: str) -> None:
    client = MlflowClient(default_store)
    experiment_id = client.create_experiment("lossforge")  # as an older lossforge made it
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags
    assert get_or_create_experiment(client, "lossforge", None) == experiment_id
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING


def test_an_experiment_that_says_its_kind_keeps_it(default_store: str) -> None:
    client = MlflowClient(default_store)
    experiment_id = client.create_experiment("mine", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    get_or_create_experiment(client, "mine", None)
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == "genai_development"
