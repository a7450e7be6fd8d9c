"""The command line answers a new user's first mistakes itself: ``check_overrides`` (a misspelt parameter, a
missing Hydra plugin), ``--help`` (the subcommands) and ``lossforge list`` (its columns)."""

from __future__ import annotations

import sys

import pytest
from helpers import GOOD_LOSS, Site, refresh_registries
from hydra.core.global_hydra import GlobalHydra

from lossforge.commands.app import run_app
from lossforge.commands.list import main as list_components
from lossforge.overrides import check_overrides

# -- loss.<param> / miner.<param> ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["loss.gama", "+loss.gama"])
def test_a_misspelt_parameter_is_answered_with_the_right_name(key: str) -> None:
    assert check_overrides(["loss=focal", f"{key}=2"]) == (
        "loss 'focal' has no parameter 'gama'. Did you mean 'gamma'? Its parameters: gamma, alpha, beta, reduction."
    )


def test_the_loss_may_be_chosen_after_its_parameter() -> None:
    assert check_overrides(["loss.gama=2", "loss=focal"]) is not None
    assert check_overrides(["loss.gamma=2", "loss=focal"]) is None


def test_without_loss_override_the_default_loss_is_checked_and_the_losses_that_take_it_are_named() -> None:
    problem = check_overrides(["loss.gamma=2"])
    assert problem is not None
    assert problem.startswith("loss 'cross_entropy' has no parameter 'gamma'.")
    assert "cross_entropy is the default loss; choose another with loss=<name>" in problem
    assert "focal" in problem


def test_known_parameters_and_the_name_pass() -> None:
    assert check_overrides(["loss=focal", "loss.gamma=0.5", "loss.alpha=[0.25]", "loss.reduction=sum"]) is None
    assert check_overrides(["loss.label_smoothing=0.1"]) is None
    assert check_overrides(["loss=triplet", "miner=semihard_triplets", "miner.margin=0.1"]) is None


def test_a_misspelt_miner_parameter() -> None:
    problem = check_overrides(["loss=triplet", "miner=semihard_triplets", "miner.margn=0.1"])
    assert problem is not None
    assert problem.startswith("miner 'semihard_triplets' has no parameter 'margn'. Did you mean 'margin'?")


def test_a_miner_parameter_without_a_miner() -> None:
    problem = check_overrides(["loss=triplet", "miner.margin=0.1"])
    assert problem is not None and "no miner is chosen: add miner=<name>" in problem


def test_a_sweep_is_checked_against_each_loss_and_says_which_lacks_the_parameter() -> None:
    problem = check_overrides(["-m", "loss=focal,cross_entropy", "loss.gamma=2"])
    assert problem is not None
    assert problem.startswith("loss 'cross_entropy' has no parameter 'gamma'.")
    assert "only 'focal' has it" in problem
    assert check_overrides(["-m", "loss=l1,l2,huber", "loss.reduction=sum"]) is None


@pytest.mark.parametrize("chooser", ["experiment=imbalance", "hparams_search=huber_optuna", "+metric_setup=triplet"])
def test_a_config_that_chooses_the_loss_is_left_to_hydra(chooser: str) -> None:
    # The loss is known only once Hydra composes the config: no guess, no false alarm.
    assert check_overrides([chooser, "loss.delta=2"]) is None


# -- Hydra plugins the README uses -------------------------------------------------------------------------

PLUGINS = [
    ("hydra/launcher=joblib", "hydra_joblib_launcher", "joblib launcher", "hydra-joblib-launcher"),
    ("hydra/launcher=submitit_slurm_ddp", "hydra_submitit_launcher", "submitit launcher", "hydra-submitit-launcher"),
    ("hydra/launcher=submitit_local_ddp", "hydra_submitit_launcher", "submitit launcher", "hydra-submitit-launcher"),
]


@pytest.mark.parametrize(("override", "module", "what", "package"), PLUGINS, ids=[row[0] for row in PLUGINS])
def test_a_missing_hydra_plugin_names_the_extra_to_install(
    override: str, module: str, what: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, f"hydra_plugins.{module}", None)  # as if not installed
    assert check_overrides(["-m", override]) == (
        f"{override} needs Hydra's {what}: .venv/bin/pip install -e '.[sweeps]' (or pip install {package})"
    )


@pytest.mark.parametrize("override", [row[0] for row in PLUGINS])
def test_an_installed_hydra_plugin_passes(override: str) -> None:
    assert check_overrides(["-m", override]) is None


@pytest.mark.parametrize("override", ["hparams_search=focal_optuna", "hydra/sweeper=optuna"])
def test_the_optuna_sweeper_is_lossforges_own_and_needs_no_extra(
    override: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_optuna_sweeper", None)  # the old package is gone
    assert check_overrides(["-m", override]) is None


# -- --help ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_subcommands_before_hydras_help(
    flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["lossforge", flag])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as stop:
        run_app()
    GlobalHydra.instance().clear()
    assert stop.value.code in (0, None)
    out = capsys.readouterr().out
    for command in ("lossforge list", "lossforge check", "lossforge compare", "lossforge benchmark"):
        assert command in out
    assert out.index("lossforge benchmark") < out.index("== Config groups (group=option) ==")
    assert "  loss: " in out and "focal" in out and "  dataset: " in out  # every group, with its options
    assert "is powered by Hydra" not in out


# -- lossforge list ------------------------------------------------------------------------------------

LONG_NAME = "scaled_l1_with_a_very_long_registry_name"


def test_list_makes_the_name_column_as_wide_as_the_longest_name(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.install(
        "lf-test-long",
        package="lf_test_long",
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {LONG_NAME: "lf_test_long.losses:ScaledL1"}},
    )
    refresh_registries()
    list_components()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ") and line[2] != " "]
    assert any(row.split()[0] == LONG_NAME for row in rows)
    second_column = {len(row) - len(row[2:].split(maxsplit=1)[1]) for row in rows}  # where the task column starts
    assert len(second_column) == 1, rows
