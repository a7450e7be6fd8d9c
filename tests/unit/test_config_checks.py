"""lossforge.config_checks on real compositions (Hydra's own parser, search path and run mode): every route that can
put a `_target_` into the composed config is refused, lossforge's own targets pass, numbers and keys are named by
setting, and a plugin's `sys.exit` at import is isolated like an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import GOOD_LOSS, Site, refresh_registries
from omegaconf import OmegaConf

from lossforge.config_checks import (
    ConfigCheckError,
    check_command_line,
    check_job,
    check_numbers,
    check_tracking_uri,
    check_trainer_arguments,
)
from lossforge.hydra_options import register_components
from lossforge.overrides import check_overrides
from lossforge.registry import LOSSES, RegistryError

CALLBACK = "{_target_:shutil.copyfile,_args_:[/nonexistent/a,/nonexistent/b]}"


@pytest.fixture(scope="module", autouse=True)
def components() -> None:
    register_components(with_parameters=True)


def _payload_folder(root: Path) -> Path:
    folder = root / "configs" / "extra"
    folder.mkdir(parents=True)
    (folder / "pwn.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    pwn:\n      _target_: shutil.copyfile\n"
        "      _args_: [/nonexistent/a, /nonexistent/b]\n"
    )
    (folder / "model_target.yaml").write_text("_target_: os.system\n_args_: [true]\n")
    logging = root / "configs" / "hydra" / "job_logging"
    logging.mkdir(parents=True)
    (logging / "pwn.yaml").write_text("version: 1\nformatters:\n  x:\n    (): os.getcwd\nroot:\n  level: INFO\n")
    return root / "configs"


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "multirun"])
def test_every_route_to_a_foreign_target_is_refused(tmp_path: Path, multirun: bool) -> None:
    configs = _payload_folder(tmp_path)
    mode = ["-m"] if multirun else []
    routes = {
        "override": [f"+hydra.callbacks.pwn={CALLBACK}"],
        "top-level override": ["+thing={_target_:os.system,_args_:[true]}"],
        "search path + group option": [f"hydra.searchpath=[file://{configs}]", "+extra=pwn"],
        "--config-dir file": ["--config-dir", str(configs), "+extra=pwn"],
        "a group option anywhere": ["--config-dir", str(configs), "+extra=model_target"],
        "a logging factory": ["--config-dir", str(configs), "hydra/job_logging=pwn"],
    }
    if multirun:  # an option a sweep chooses, composed only in the job (Hydra applies its logging there)
        routes["a swept group option"] = ["--config-dir", str(configs), "+extra=model_target,pwn"]
    for route, arguments in routes.items():
        problem = check_command_line([*mode, *arguments])
        assert problem is not None and "refusing to run" in problem, route
        assert "defaults:" in problem and "LOSSFORGE_ALLOW_TARGETS=1" in problem, route


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["-m", "seed=0,1"],
        ["-m", "hydra/launcher=parallel", "seed=0,1"],
        ["hydra/launcher=submitit_slurm"],
        ["-m", "hparams_search=focal_optuna"],  # the Optuna sweeper and its sampler
        ["-m", "hydra/launcher=joblib", "seed=0,1"],
        ["experiment=metric"],
        ["--cfg", "job", "+x={_target_:os.system}"],  # prints only: nothing is instantiated
    ],
)
def test_lossforges_own_targets_pass(arguments: list[str]) -> None:
    assert check_command_line(arguments) is None


def test_allow_targets_switch_lets_a_trusted_target_through() -> None:
    config = OmegaConf.create({"thing": {"_target_": "os.system"}})
    with pytest.raises(ConfigCheckError):
        check_job(config, environment={})
    check_job(config, environment={"LOSSFORGE_ALLOW_TARGETS": "1"})


def test_a_misspelt_key_is_answered_with_the_setting_that_exists() -> None:
    assert "Did you mean trainer.max_epochs?" in (check_command_line(["trainer.max_epoch=3"]) or "")
    problem = check_command_line(["dataset.batch_size=0"]) or ""
    assert "The setting is batch_size: write batch_size=" in problem


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("seed", -1, "seed=-1 is out of range"),
        ("seed", 2**32, "seed=4294967296 is out of range"),
        ("batch_size", 0, "batch_size=0 is out of range"),
        ("eval_batch_size", 0, "eval_batch_size=0 is out of range"),
        ("optimizer.lr", float("inf"), "optimizer.lr=inf must be finite"),
        ("optimizer.lr", 0.0, "optimizer.lr=0 trains nothing"),
        ("optimizer.lr", -0.1, "optimizer.lr=-0.1 is out of range"),
        ("dataset.split_seed", -3, "dataset.split_seed=-3 is out of range"),
        ("seed", 1.5, "seed=1.5 must be an integer"),
    ],
)
def test_out_of_range_numbers_are_named_by_setting(setting: str, value: object, expected: str) -> None:
    config = OmegaConf.create({})
    OmegaConf.update(config, setting, value, force_add=True)
    with pytest.raises(ConfigCheckError, match=expected.replace("(", r"\(")):
        check_numbers(config)


def test_the_default_config_is_in_range() -> None:
    assert check_command_line(["seed=4294967295", "optimizer.lr=1e30"]) is None  # large, not out of range


def test_a_trainer_setting_lightning_lacks_is_refused() -> None:
    with pytest.raises(ConfigCheckError, match="Did you mean 'max_epochs'"):
        check_trainer_arguments({"max_epoch": 3})
    check_trainer_arguments({"max_epochs": 3, "deterministic": True})


def test_a_tracking_uri_with_credentials_is_refused_unprinted() -> None:
    with pytest.raises(ConfigCheckError) as raised:
        check_tracking_uri("https://alice:pw-1@mlflow.example:5000/")
    assert "MLFLOW_TRACKING_USERNAME" in str(raised.value) and "pw-1" not in str(raised.value)
    assert "https://mlflow.example:5000/" in str(raised.value)
    with pytest.raises(ConfigCheckError, match="MLFLOW_TRACKING_URI=http://"):
        check_job(OmegaConf.create({}), environment={"MLFLOW_TRACKING_URI": "http://u:p@h"})


# -- the registry: sys.exit at import, and a name two packages register -----------------------------------------
def test_a_plugin_calling_sys_exit_at_import_is_isolated_and_named(site: Site) -> None:
    site.install(
        "exits-at-import",
        package="exits_at_import",
        files={"losses.py": "import sys\nsys.exit(3)\n"},
        entry_points={"lossforge.losses": {"quits": "exits_at_import.losses:Quits"}},
    )
    refresh_registries()
    with pytest.raises(RegistryError) as raised:
        LOSSES.load("quits")
    assert "sys.exit(3)" in str(raised.value)
    assert "LOSSFORGE_BLOCK_PLUGINS=exits-at-import" in str(raised.value)
    assert LOSSES.load("l1") is not None  # the others keep working


def test_keyboard_interrupt_at_import_still_stops_the_command(site: Site) -> None:
    site.install(
        "interrupts",
        package="interrupts_at_import",
        files={"losses.py": "raise KeyboardInterrupt\n"},
        entry_points={"lossforge.losses": {"interrupts": "interrupts_at_import.losses:X"}},
    )
    refresh_registries()
    with pytest.raises(KeyboardInterrupt):
        LOSSES.load("interrupts")


def test_a_name_two_packages_register_gets_the_registrys_conflict_message(site: Site) -> None:
    site.install(
        "another-l1",
        package="another_l1",
        files={"losses.py": GOOD_LOSS},
        entry_points={"lossforge.losses": {"l1": "another_l1.losses:ScaledL1"}},
    )
    refresh_registries()
    problem = check_overrides(["loss=l1"]) or ""
    assert "registered by more than one package" in problem
    assert "'lossforge:l1'" in problem and "'another-l1:l1'" in problem and "Did you mean" not in problem
