"""``lossforge.preflight``: a sweep's jobs enumerated as Hydra's basic sweeper launches them, each checked like a
single run before the first trains. (The refusal end to end: ``tests/e2e/test_concurrency.py``.)"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from helpers import Site, compose_config, refresh_registries
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict, read_write

from lossforge.hydra_options import register_components
from lossforge.preflight import BadJob, bad_jobs, job_problem, refusal, sweep_jobs, sweep_refusal
from lossforge.run_dirs import register_launch_id


def multirun_config(*task_overrides: str, sweeper_params: dict[str, str] | None = None) -> DictConfig:
    """The config ``on_multirun_start`` gets for ``lossforge -m <task_overrides>``."""
    register_components(with_parameters=True)
    register_launch_id()
    GlobalHydra.instance().clear()
    with initialize_config_module("lossforge.conf", version_base="1.3"):
        config = compose("config", return_hydra_config=True)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.overrides.task = list(task_overrides)
        if sweeper_params:
            config.hydra.sweeper.params = sweeper_params
    return config


def compose_job(overrides: Sequence[str]) -> DictConfig:
    return compose_config(*overrides)


def test_jobs_are_enumerated_in_the_basic_sweepers_launch_order() -> None:
    config = multirun_config("loss=l1,huber", "seed=0,1", "dataset=regression_outliers")
    assert sweep_jobs(config) == [
        ["loss=l1", "seed=0", "dataset=regression_outliers"],
        ["loss=l1", "seed=1", "dataset=regression_outliers"],
        ["loss=huber", "seed=0", "dataset=regression_outliers"],
        ["loss=huber", "seed=1", "dataset=regression_outliers"],
    ]


def test_an_experiments_sweeper_params_are_jobs_too() -> None:
    config = multirun_config("seed=3", sweeper_params={"loss": "l1,l2"})
    assert sweep_jobs(config) == [["loss=l1", "seed=3"], ["loss=l2", "seed=3"]]


def test_a_sweeper_that_draws_its_jobs_as_it_goes_is_not_enumerated() -> None:
    config = multirun_config("loss=l1,huber")
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.sweeper._target_ = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweep_jobs(config) is None and sweep_refusal(config, compose_job) is None


def test_each_bad_combination_is_named_once_per_configuration_and_the_good_ones_are_not() -> None:
    composed: list[tuple[str, ...]] = []

    def counting(overrides: Sequence[str]) -> DictConfig:
        composed.append(tuple(overrides))
        return compose_job(overrides)

    jobs = [
        [f"loss={loss}", f"seed={seed}", "dataset=regression_outliers"]
        for loss in ("l1", "cross_entropy")
        for seed in (0, 1)
    ]
    bad = bad_jobs(jobs, counting)
    assert [job.job_num for job in bad] == [2, 3]
    assert bad[0].reason == bad[1].reason
    assert (
        "Loss 'cross_entropy' serves multiclass, but dataset 'regression_outliers' is a regression task"
        in bad[0].reason
    )
    assert "Losses that fit 'regression_outliers':" in bad[0].reason and "huber" in bad[0].reason
    assert len(composed) == 2  # seeds change nothing a check looks at: each configuration is composed once


def test_the_refusal_of_a_whole_sweep_names_every_bad_job() -> None:
    config = multirun_config("loss=l1,cross_entropy", "dataset=regression_outliers")
    message = sweep_refusal(config, compose_job)
    assert message is not None and message.startswith("the sweep was refused before any job trained: 1 of its 2 jobs")
    assert "job 1 (loss=cross_entropy dataset=regression_outliers)" in message and "job 0" not in message
    assert sweep_refusal(multirun_config("loss=l1,huber", "dataset=regression_outliers"), compose_job) is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["trainer.max_epochs=0"], "trainer.max_epochs must be >= 1 (got 0)"),
        (["loss=cross_entropy", "miner=semihard_triplets"], "Miner 'semihard_triplets' mines pairs/triplets"),
        (["loss=focal", "loss.gamma=-1"], "focal"),
    ],
    ids=["no epochs", "miner without a metric loss", "a value the loss refuses"],
)
def test_a_configuration_a_single_run_would_refuse_is_refused(overrides: list[str], expected: str) -> None:
    problem = job_problem(overrides, compose_job)
    assert problem is not None and expected in problem, problem


def test_a_configuration_that_cannot_compose_is_a_bad_job_with_hydras_reason() -> None:
    (bad,) = bad_jobs([["loss=l1", "loss.gammma=2"]], compose_job)
    assert "gammma" in bad.reason


def test_refusal_lists_the_jobs_and_what_to_do() -> None:
    message = refusal([BadJob(4, ("loss=l1", "seed=2"), "why")], jobs=9)
    assert message.splitlines() == [
        "the sweep was refused before any job trained: 1 of its 9 jobs cannot run.",
        "  job 4 (loss=l1 seed=2): why",
        "Drop these combinations (sweep them separately) or fix their settings; nothing was trained or recorded.",
    ]


def test_a_plugin_that_does_not_import_is_left_to_its_job_which_records_it_and_resumes(site: Site) -> None:
    # Not a configuration error: the sweep runs, records that job FAILED, and sweep.resume=true reruns it once the
    # package is fixed (tests/e2e/test_sweep_resume.py).
    site.install(
        "lf-flaky",
        package="lf_flaky",
        files={"losses.py": 'raise RuntimeError("its data server is down")\n'},
        entry_points={"lossforge.losses": {"flaky_l1": "lf_flaky.losses:ScaledL1"}},
    )
    refresh_registries()
    jobs = [[f"loss={loss}", "dataset=regression_outliers"] for loss in ("l1", "flaky_l1", "cross_entropy")]
    assert [job.job_num for job in bad_jobs(jobs, compose_job)] == [2]
