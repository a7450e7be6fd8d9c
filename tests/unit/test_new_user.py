"""What a new user tripped on: a run of 0 or -1 epochs, run names without the seed, losses printed without their
parameters, an experiment the MLflow UI took for a GenAI one; and, following the docs literally, commands that
assume an activated `.venv`, a plugin `pyproject.toml` that did not install, a test step without pytest, and
`lossforge check <loss name>` that wanted a package name without saying so."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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


# -- `lossforge check <name>` ----------------------------------------------------------------------------


def test_lossforge_check_takes_a_component_name(capsys: pytest.CaptureFixture[str]) -> None:
    from lossforge.commands.check import main as check_components

    assert check_components(["focal"]) == 0
    out = capsys.readouterr().out
    assert "ok    loss    focal" in out and "1 of 1 components meet the contract" in out


def test_lossforge_check_says_what_it_wants_for_a_name_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    from lossforge.commands.check import main as check_components

    assert check_components(["focall"]) == 2
    out = capsys.readouterr().out
    assert "'focall' is neither a package that registers" in out
    assert "Did you mean 'focal'?" in out
    assert "package (distribution) name" in out and "lossforge-extras" in out


# -- the docs a new user follows ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_use_commands_come_after_activating_the_venv(page: str) -> None:
    text = (ROOT / page).read_text()
    activate = text.find("source .venv/bin/activate")
    first_use = min(text.find(command) for command in ("\npython -m lossforge", "\nlossforge "))
    assert 0 <= activate < first_use, f"{page}: say to activate .venv before the first bare command"
    assert "No module named 'hydra'" in text  # what the system's python answers, so a reader recognises it


def _plugin_guide_snippet() -> str:
    guide = (ROOT / "plugins" / "README.md").read_text()
    match = re.search(r"```toml\n(# pyproject.toml of your package\n.*?)```", guide, re.S)
    assert match, "plugins/README.md: the pyproject.toml snippet of section 1"
    return match.group(1)


@pytest.mark.slow
def test_the_plugin_guides_pyproject_installs_as_written(tmp_path: Path) -> None:
    project = tmp_path / "my-losses"
    (project / "my_losses").mkdir(parents=True)
    (project / "my_losses" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(_plugin_guide_snippet())
    target = tmp_path / "target"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(target), str(project)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (entry_points_file,) = target.glob("my_losses-0.1.0.dist-info/entry_points.txt")
    assert "smooth_l1 = my_losses.regression:SmoothL1Loss" in entry_points_file.read_text()


def test_the_plugin_guide_installs_pytest_for_its_test_step() -> None:
    snippet = tomllib.loads(_plugin_guide_snippet())
    assert any(requirement.startswith("pytest") for requirement in snippet["project"]["optional-dependencies"]["test"])
    assert 'pip install -e ".[test]"' in (ROOT / "plugins" / "README.md").read_text()
