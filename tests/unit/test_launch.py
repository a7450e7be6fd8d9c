"""How many processes a trainer config asks for, which one this is, and the configs that cannot run
(``lossforge.distributed.launch``); nothing here starts a process."""

from __future__ import annotations

import pytest
from helpers import compose_config
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from lossforge import distributed
from lossforge.distributed import Processes, plan_processes
from lossforge.hydra_options import register_components


def launcher_config(*overrides: str) -> DictConfig:
    """The ``hydra.launcher`` node that ``overrides`` select (``compose_config`` leaves the ``hydra`` node out)."""
    register_components(with_parameters=True)  # the losses and miners that the config's defaults name
    GlobalHydra.instance().clear()
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def test_the_trainer_configs_plan_their_processes() -> None:
    assert plan_processes(compose_config("trainer=cpu").trainer) == Processes()
    ddp_cpu = compose_config("trainer=ddp_cpu").trainer
    assert ddp_cpu.strategy == "ddp" and ddp_cpu.accelerator == "cpu"
    assert plan_processes(ddp_cpu) == Processes(rank=0, world_size=2, per_node=2, start_here=True)
    assert compose_config("trainer=ddp").trainer.accelerator == "gpu"


@pytest.mark.parametrize(("devices", "count"), [(3, 3), ("3", 3), ([0, 2], 2), ("0,1", 2), ("2,", 1)])
def test_devices_count_as_lightning_counts_them(devices: object, count: int) -> None:
    planned = plan_processes({"accelerator": "cpu", "devices": devices, "strategy": "ddp"})
    assert (planned.world_size, planned.per_node) == (count, count)


def test_processes_started_by_slurm_or_torchrun_take_their_rank_from_there(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = {"accelerator": "gpu", "devices": 4, "num_nodes": 2, "strategy": "ddp"}
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_NAME", "lossforge")
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert plan_processes(trainer) == Processes(rank=5, world_size=8, per_node=4, start_here=False)
    monkeypatch.setenv("RANK", "3")  # torchrun's variable wins
    assert plan_processes(trainer).rank == 3


def test_configurations_that_cannot_run_fail_before_training() -> None:
    with pytest.raises(distributed.DistributedConfigError, match="not supported"):
        plan_processes({"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"})
    with pytest.raises(distributed.DistributedConfigError, match="SLURM"):
        plan_processes({"accelerator": "cpu", "devices": 2, "num_nodes": 2, "strategy": "ddp"})
    with pytest.raises(distributed.DistributedConfigError, match="Lightning made it rank 1 of 2"):
        distributed.check_agrees(Processes(rank=0, world_size=2, per_node=2), global_rank=1, world_size=2)


def test_the_slurm_launcher_asks_for_one_task_per_device_on_every_node() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra.utils import instantiate

    launcher = instantiate(
        launcher_config("hydra/launcher=submitit_slurm_ddp", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    )
    assert type(launcher).__name__ == "SlurmLauncher"
    assert (launcher.params["nodes"], launcher.params["tasks_per_node"], launcher.params["gpus_per_node"]) == (2, 4, 4)
    local = instantiate(launcher_config("hydra/launcher=submitit_local_ddp", "trainer=ddp_cpu"))
    assert type(local).__name__ == "LocalLauncher" and local.params["tasks_per_node"] == 1
