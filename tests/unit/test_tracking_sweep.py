"""A multirun's parent run, each job's place in it, failed jobs and resume (``lossforge.sweeps.multirun``), and
the config hash resume matches jobs by (``lossforge.tracking.config_hash``) — against a SQLite store and a
Hydra config built by hand: no Hydra run, no subprocess."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import compose_config
from hydra.types import RunMode
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from lossforge.sweeps import MlflowSweepCallback
from lossforge.sweeps import jobs as sweep_jobs
from lossforge.sweeps.jobs import (
    CANCELLED,
    CONFIG_HASH_TAG,
    ERROR_TAG,
    SUPERSEDED_TAG,
    JobCancelled,
    SweepFailed,
    SweepOptions,
    earlier_runs,
    job_key,
    latest_parent,
    run_sweep_job,
    split_for_resume,
    sweep_hash,
)
from lossforge.tracking import SWEEP_RECORD, SweepJob, mlflow_run, run_context_tags, sweep_job
from lossforge.tracking.config_hash import EXCLUDED, canonical_json, config_hash

SWEEP_DIR = "outputs/multirun/2025-01-01/12-00-00"  # relative, as conf/config.yaml sets it


def hydra_config(started_in: Path, *, mode: RunMode | None = RunMode.MULTIRUN, job_num: int = 0) -> DictConfig:
    """The parts of ``HydraConfig.get()`` that a sweep reads."""
    return OmegaConf.create(
        {
            "mode": mode,
            "sweep": {"dir": SWEEP_DIR},
            "job": {"num": job_num},
            "overrides": {"task": ["loss=huber", "seed=1"]},
            "runtime": {"cwd": str(started_in)},
        }
    )


def multirun_config(started_in: Path) -> DictConfig:
    """What ``on_multirun_start`` receives: the config with its ``hydra`` node."""
    store = f"sqlite:///{started_in / 'mlflow.db'}"
    logger = {"tracking_uri": store, "artifact_location": (started_in / "artifacts").as_uri(), "experiment": "sweeps"}
    config = OmegaConf.create({"logger": logger, "hydra": hydra_config(started_in)})
    config.hydra.overrides.task = ["loss=l1,huber", "seed=1"]
    return config


@pytest.mark.parametrize("mode", [RunMode.RUN, None])
def test_outside_a_multirun_there_is_no_sweep_job(tmp_path: Path, mode: RunMode | None) -> None:
    assert sweep_job(hydra_config(tmp_path, mode=mode)) is None


def test_without_the_callback_a_job_has_no_parent_run(tmp_path: Path) -> None:
    assert sweep_job(hydra_config(tmp_path, job_num=2)) == SweepJob(
        sweep_dir=SWEEP_DIR, job_num=2, overrides=("loss=huber", "seed=1"), parent_run_id=None
    )


def test_the_jobs_find_the_parent_run_in_the_sweep_directory_and_end_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = multirun_config(tmp_path)
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    record = json.loads((tmp_path / SWEEP_DIR / SWEEP_RECORD).read_text())  # the directory did not exist yet
    assert record == {"parent_run_id": callback.parent_run_id, "tracking_uri": config.logger.tracking_uri}

    elsewhere = tmp_path / "job"  # a job that runs in its own directory (hydra.job.chdir=true, a SLURM node)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    job = sweep_job(hydra_config(tmp_path, job_num=1))
    assert job is not None and (job.parent_run_id, job.job_num) == (callback.parent_run_id, 1)
    with mlflow_run(
        tracking_uri=config.logger.tracking_uri,
        experiment="sweeps",
        run_name="child",
        tags=run_context_tags(job),
        artifact_location=config.logger.artifact_location,
    ):
        pass

    callback.on_multirun_end(config)
    parent = MlflowClient(config.logger.tracking_uri).get_run(callback.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["lossforge.children"] == "1"
    assert parent.data.params["overrides"] == "loss=l1,huber seed=1"


# -- the config hash -----------------------------------------------------------------------------------------
def test_the_config_hash_is_a_fixed_sha256_of_the_canonical_json() -> None:
    # The value is pinned: any process, any Python 3 version, any key order computes this same hash.
    config = {"seed": 0, "loss": {"gamma": 2.0, "name": "focal"}, "optimizer": {"lr": 0.001}}
    assert canonical_json(config) == '{"loss":{"gamma":2.0,"name":"focal"},"optimizer":{"lr":0.001},"seed":0}'
    assert config_hash(config) == hashlib.sha256(canonical_json(config).encode()).hexdigest()
    assert config_hash(config) == config_hash(
        {"optimizer": {"lr": 0.001}, "loss": {"name": "focal", "gamma": 2.0}, "seed": 0}
    )


@pytest.mark.parametrize(
    "change",
    [
        "loss=l1",
        "loss.gamma=1.5",
        "seed=1",
        "optimizer.lr=0.01",
        "optimizer=sgd",
        "trainer.max_epochs=3",
        "model.hidden=[8]",
    ],
)
def test_what_a_run_computes_changes_the_hash(change: str) -> None:
    base = compose_config("loss=focal")
    assert config_hash(compose_config("loss=focal", change)) != config_hash(base)


@pytest.mark.parametrize(
    "change",
    [
        "verbose=false",
        "run_name=mine",
        "logger.tracking_uri=sqlite:///elsewhere.db",
        "logger.artifact_location=/tmp/elsewhere",
        "trainer.enable_progress_bar=true",
        "sweep.resume=true",
        "sweep.fail_fast=true",
    ],
)
def test_what_only_labels_or_places_a_run_leaves_the_hash_alone(change: str) -> None:
    assert config_hash(compose_config("loss=focal", change)) == config_hash(compose_config("loss=focal"))


def test_every_excluded_key_exists_in_the_config_or_is_hydras() -> None:
    config = OmegaConf.to_container(compose_config(), resolve=False)
    for dotted in EXCLUDED:
        node: object = config
        for key in dotted.split(".")[:-1]:
            node = node[key]  # type: ignore[index]
        assert dotted in ("hydra", "trainer.default_root_dir") or dotted.split(".")[-1] in node, dotted  # type: ignore[operator]


# -- which earlier runs a resumed job finds ------------------------------------------------------------------
def test_the_sweep_hash_ignores_switches_and_order_but_not_the_sweep() -> None:
    assert sweep_hash(["loss=l1,l2", "seed=0"]) == sweep_hash(["seed=0", "loss=l1,l2", "sweep.resume=true"])
    assert sweep_hash(["loss=l1,l2", "seed=0"]) == sweep_hash(["loss=l1,l2", "seed=0", "verbose=true"])
    assert sweep_hash(["loss=l1,l2", "seed=0"]) != sweep_hash(["loss=l1,l2", "seed=0,1"])
    assert job_key(["seed=1", "+sweep.fail_fast=true", "loss=l1"]) == ("loss=l1", "seed=1")


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> str:
    path = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, path)
    return f"sqlite:///{path}"


def make_parent(client: MlflowClient) -> str:
    experiment_id = client.create_experiment("sweeps")
    return str(client.create_run(experiment_id, tags={"lossforge.sweep": "parent"}).info.run_id)


def make_child(client: MlflowClient, parent: str, status: str, *, digest: str, overrides: str = "loss=l1") -> str:
    experiment_id = client.get_run(parent).info.experiment_id
    tags = {"mlflow.parentRunId": parent, CONFIG_HASH_TAG: digest, "hydra.overrides": overrides, "hydra.job_num": "0"}
    run = client.create_run(experiment_id, tags=tags)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status=status)
    time.sleep(0.002)  # distinct start times
    return str(run.info.run_id)


JOB = SweepJob(
    sweep_dir="outputs/multirun/x", job_num=0, overrides=("loss=l1", "sweep.resume=true"), parent_run_id=None
)


def test_a_finished_run_of_the_same_config_holds_the_job_and_nothing_is_superseded(store: str) -> None:
    client = MlflowClient(store)
    parent = make_parent(client)
    make_child(client, parent, "FAILED", digest="a")
    finished = make_child(client, parent, "FINISHED", digest="a")
    make_child(client, parent, "FINISHED", digest="b", overrides="loss=l2")
    job = dataclasses.replace(JOB, parent_run_id=parent)
    holder, unfinished = split_for_resume(earlier_runs(client, parent, "a", job), "a")
    assert holder is not None and holder.info.run_id == finished and unfinished == []


def test_failed_killed_and_dead_running_attempts_are_rerun_also_when_their_hash_differs(store: str) -> None:
    client = MlflowClient(store)
    parent = make_parent(client)
    # A job that failed before its plugin loaded was composed without the plugin's defaults: another hash.
    attempts = [
        make_child(client, parent, status, digest=digest)
        for status, digest in (("FAILED", "before-the-fix"), ("KILLED", "a"), ("RUNNING", "a"))
    ]
    make_child(client, parent, "FAILED", digest="c", overrides="loss=l2")  # another job's failure
    make_child(client, parent, "FINISHED", digest="old-defaults")  # a finished run of an older config
    job = dataclasses.replace(JOB, parent_run_id=parent)
    holder, unfinished = split_for_resume(earlier_runs(client, parent, "a", job), "a")
    assert holder is None and [run.info.run_id for run in unfinished] == attempts


def test_the_latest_of_several_matching_sweeps_is_resumed(store: str) -> None:
    client = MlflowClient(store)
    experiment_id = client.create_experiment("sweeps")
    older = client.create_run(experiment_id, start_time=1_000)
    newer = client.create_run(experiment_id, start_time=2_000)
    chosen, others = latest_parent([older, newer])
    assert chosen is not None and chosen.info.run_id == newer.info.run_id
    assert [run.info.run_id for run in others] == [older.info.run_id]
    assert latest_parent([]) == (None, [])


# -- a job that fails, is skipped, or is rerun ---------------------------------------------------------------
def job_config(store: str) -> DictConfig:
    return OmegaConf.create(
        {
            "loss": {"name": "l1"},
            "dataset": {"name": "digits"},
            "seed": 0,
            "run_name": "l1-job",
            "logger": {"tracking_uri": store, "experiment": "sweeps"},
        }
    )


def test_a_job_failing_before_its_run_exists_gets_a_failed_run_and_the_sweep_goes_on(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(store)
    parent = make_parent(client)
    job = dataclasses.replace(JOB, parent_run_id=parent, overrides=("loss=l1",))
    cfg = job_config(store)

    def broken_plugin(tags: Mapping[str, str]) -> dict[str, float]:
        raise LookupError("loss 'l1' failed to load: no module named 'gone'")

    assert run_sweep_job(job, cfg, broken_plugin, options=SweepOptions(), tracking_uri=store) is None
    (run,) = client.search_runs([client.get_run(parent).info.experiment_id], "tags.`mlflow.parentRunId` != ''")
    assert run.info.status == "FAILED" and run.info.run_name == "l1-job"
    assert run.data.tags[ERROR_TAG] == "LookupError: loss 'l1' failed to load: no module named 'gone'"
    assert run.data.tags[CONFIG_HASH_TAG] == config_hash(cfg) and run.data.tags["hydra.job_num"] == "0"
    assert run.data.params["loss.name"] == "l1"
    assert "l1-job: FAILED  LookupError" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("error", "quiet_errors", "traceback"),
    [
        (ConnectionError("tracking server http://127.0.0.1:1 refused the connection"), (LookupError,), False),
        (MlflowException("API request to http://127.0.0.1:1 failed"), (LookupError,), False),
        (MlflowException("API request to http://127.0.0.1:1 failed"), (), True),  # LOSSFORGE_TRACEBACK=1
        (RuntimeError("a bug"), (LookupError,), True),
        (LookupError("bad input"), (LookupError,), False),
    ],
    ids=["refused", "mlflow-outage", "outage-with-traceback-switch", "bug", "bad-input"],
)
def test_an_outage_is_logged_as_one_line_a_bug_with_its_traceback(
    store: str, caplog: pytest.LogCaptureFixture, error: Exception, quiet_errors: tuple, traceback: bool
) -> None:
    client = MlflowClient(store)
    job = dataclasses.replace(JOB, parent_run_id=make_parent(client), overrides=("loss=l1",))

    def fails(tags: Mapping[str, str]) -> dict[str, float]:
        raise error

    with caplog.at_level(logging.ERROR, logger="lossforge"):
        run_sweep_job(
            job, job_config(store), fails, options=SweepOptions(), tracking_uri=store, quiet_errors=quiet_errors
        )
    (record,) = [record for record in caplog.records if record.getMessage().startswith("job 0 failed")]
    assert bool(record.exc_info) is traceback


def test_a_job_whose_run_recorded_its_own_failure_gets_no_second_run(store: str) -> None:
    client = MlflowClient(store)
    parent = make_parent(client)
    job = dataclasses.replace(JOB, parent_run_id=parent, overrides=("loss=l1",))

    def fails_in_its_run(tags: Mapping[str, str]) -> dict[str, float]:
        with mlflow_run(tracking_uri=store, experiment="sweeps", run_name="x", tags={**run_context_tags(job), **tags}):
            raise FloatingPointError("l1 loss became nan at epoch 0, step 3")

    assert run_sweep_job(job, job_config(store), fails_in_its_run, options=SweepOptions(), tracking_uri=store) is None
    (run,) = client.search_runs([client.get_run(parent).info.experiment_id], "tags.`mlflow.parentRunId` != ''")
    assert run.info.status == "FAILED" and "step 3" in run.data.tags[ERROR_TAG]


def test_fail_fast_records_the_failure_and_stops_the_sweep(store: str) -> None:
    client = MlflowClient(store)
    parent = make_parent(client)
    job = dataclasses.replace(JOB, parent_run_id=parent, overrides=("loss=l1",))

    def fails(tags: Mapping[str, str]) -> dict[str, float]:
        raise ValueError("bad")

    with pytest.raises(SweepFailed) as stop:
        run_sweep_job(job, job_config(store), fails, options=SweepOptions(fail_fast=True), tracking_uri=store)
    assert stop.value.code == 1 and "job 0 failed and sweep.fail_fast=true: ValueError: bad" in str(stop.value)
    assert isinstance(stop.value, SystemExit)  # what Hydra's run_job does not catch: the launcher stops
    (run,) = client.search_runs([client.get_run(parent).info.experiment_id], "tags.`mlflow.parentRunId` != ''")
    assert run.info.status == "FAILED"


def test_resume_skips_a_finished_job_without_training_and_reruns_a_failed_one(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(store)
    parent = make_parent(client)
    cfg = job_config(store)
    finished = make_child(client, parent, "FINISHED", digest=config_hash(cfg))
    client.log_metric(finished, "test/mae", 0.25)
    job = dataclasses.replace(JOB, parent_run_id=parent)

    def must_not_train(tags: Mapping[str, str]) -> dict[str, float]:
        raise AssertionError("a finished job was trained again")

    metrics = run_sweep_job(job, cfg, must_not_train, options=SweepOptions(resume=True), tracking_uri=store)
    assert metrics == {"test/mae": 0.25}
    assert f"job 0 skipped (sweep.resume): run {finished}" in capsys.readouterr().out

    other = job_config(store)
    other.seed = 1
    dead = make_child(client, parent, "RUNNING", digest=config_hash(other), overrides="loss=l1 seed=1")
    rerun = dataclasses.replace(job, overrides=("loss=l1", "seed=1", "sweep.resume=true"))
    trained: list[Mapping[str, str]] = []
    metrics = run_sweep_job(
        rerun,
        other,
        lambda tags: trained.append(tags) or {"test/mae": 0.5},
        options=SweepOptions(resume=True),
        tracking_uri=store,
    )
    assert metrics == {"test/mae": 0.5} and trained == [{CONFIG_HASH_TAG: config_hash(other)}]
    superseded = client.get_run(dead)
    assert superseded.info.status == "KILLED" and superseded.info.lifecycle_stage == "deleted"
    assert "rerun by sweep.resume as job 0" in superseded.data.tags[SUPERSEDED_TAG]
    assert superseded.data.tags["lossforge.outcome"] == "superseded"  # docs/decisions.md §2


# -- a job cancelled by SIGTERM (scancel) ---------------------------------------------------------------------
def sigterm_while_training(store: str, job: SweepJob, tags: Mapping[str, str], *, in_a_run: bool) -> dict[str, float]:
    """A ``train`` that receives SIGTERM (as ``scancel`` sends it) before Lightning's fit handles signals:
    inside its MLflow run, or before it made one."""
    with contextlib.ExitStack() as stack:
        if in_a_run:
            context = {**run_context_tags(job), **tags}
            stack.enter_context(mlflow_run(tracking_uri=store, experiment="sweeps", run_name="x", tags=context))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler interrupts this
    raise AssertionError("the SIGTERM did not stop the job")


@pytest.mark.parametrize("in_a_run", [True, False], ids=["in-its-run", "before-its-run"])
def test_a_job_cancelled_by_sigterm_ends_killed_and_returns_so_its_launcher_collects_it(
    store: str, in_a_run: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sweep_jobs, "_launcher_pid", os.getpid() + 1)  # the job runs apart from the sweep
    client = MlflowClient(store)
    parent = make_parent(client)
    job = dataclasses.replace(JOB, parent_run_id=parent, overrides=("loss=l1",))
    handler = signal.getsignal(signal.SIGTERM)

    def train(tags: Mapping[str, str]) -> dict[str, float]:
        return sigterm_while_training(store, job, tags, in_a_run=in_a_run)

    assert run_sweep_job(job, job_config(store), train, options=SweepOptions(), tracking_uri=store) is None
    assert signal.getsignal(signal.SIGTERM) is handler, "the job's SIGTERM handler is removed after it"
    (run,) = client.search_runs([client.get_run(parent).info.experiment_id], "tags.`mlflow.parentRunId` != ''")
    assert run.info.status == "KILLED" and run.data.tags[ERROR_TAG] == CANCELLED == "cancelled (SIGTERM)"
    assert f"l1-job: KILLED  cancelled (SIGTERM)  (run {run.info.run_id})" in capsys.readouterr().out


def test_a_sigterm_in_the_sweeps_own_process_ends_the_sweep(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The basic launcher runs the jobs in the sweep's process: a SIGTERM there is for the whole sweep."""
    monkeypatch.setattr(sweep_jobs, "_launcher_pid", os.getpid())
    client = MlflowClient(store)
    job = dataclasses.replace(JOB, parent_run_id=make_parent(client), overrides=("loss=l1",))

    def train(tags: Mapping[str, str]) -> dict[str, float]:
        return sigterm_while_training(store, job, tags, in_a_run=True)

    with pytest.raises(JobCancelled) as stop:
        run_sweep_job(job, job_config(store), train, options=SweepOptions(), tracking_uri=store)
    assert stop.value.code == 128 + signal.SIGTERM


# -- the end of a sweep, and resuming its parent -------------------------------------------------------------
def test_a_sweep_with_a_failed_job_prints_the_failures_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = multirun_config(tmp_path)
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    client = MlflowClient(config.logger.tracking_uri)
    for number, (status, error) in enumerate([("FINISHED", None), ("FAILED", "RegistryError: no such plugin")]):
        experiment_id = client.get_run(callback.parent_run_id).info.experiment_id
        tags = {
            "mlflow.parentRunId": callback.parent_run_id,
            "hydra.job_num": str(number),
            "hydra.overrides": f"loss=l{number + 1}",
            **({ERROR_TAG: error} if error else {}),
        }
        run = client.create_run(experiment_id, tags=tags, run_name=f"job{number}")
        client.set_terminated(run.info.run_id, status=status)

    with pytest.raises(SweepFailed) as stop:
        callback.on_multirun_end(config)
    assert stop.value.code == 1
    printed = capsys.readouterr().out
    assert "Failed jobs (1):" in printed
    assert re.search(r"^  1    loss=l2    FAILED  RegistryError: no such plugin$", printed, re.MULTILINE), printed
    parent = client.get_run(callback.parent_run_id)
    assert parent.info.status == "FAILED" and parent.data.tags["lossforge.failed"] == "1"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_tracking_server_gone_at_the_sweeps_end_fails_the_sweep_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server stopped answering before the sweep ended: exit status 1 and how to go on, not a warning from
    Hydra and a traceback at exit."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    config = multirun_config(tmp_path)
    callback = MlflowSweepCallback()
    callback.on_multirun_start(config)
    callback.client = MlflowClient(f"http://alice:s3cret@127.0.0.1:{closed_port()}")  # the server is gone
    capsys.readouterr()  # what setting up the store printed

    with pytest.raises(SweepFailed) as stop:
        callback.on_multirun_end(config)
    assert stop.value.code == 1
    expected = (
        f"tracking server http://***@127.0.0.1:{callback.client.tracking_uri.rsplit(':', 1)[1]} did not answer "
        "at the sweep's end; rerun the same command with sweep.resume=true once it is back"
    )
    assert str(stop.value) == expected
    printed = capsys.readouterr()
    assert printed.err == f"lossforge: error: {expected}\n" and "s3cret" not in printed.out + printed.err

    callback._end_if_abandoned()  # at exit (unregistered by on_multirun_end): one line, no traceback
    assert capsys.readouterr().err == f"lossforge: error: {expected}\n"


def test_resume_reopens_the_latest_parent_of_the_same_sweep_else_starts_a_new_one(tmp_path: Path) -> None:
    first = MlflowSweepCallback()
    first.on_multirun_start(multirun_config(tmp_path))
    first.on_multirun_end(multirun_config(tmp_path))

    again = multirun_config(tmp_path)
    again.hydra.sweep.dir = "outputs/multirun/2025-01-02/08-00-00"  # a new timestamped directory
    again.hydra.overrides.task.append("sweep.resume=true")
    again.sweep = {"resume": True}
    resumed = MlflowSweepCallback()
    resumed.on_multirun_start(again)
    assert resumed.parent_run_id == first.parent_run_id
    parent = MlflowClient(again.logger.tracking_uri).get_run(first.parent_run_id)
    assert parent.info.status == "RUNNING" and parent.data.tags["lossforge.resumed"] == "1"
    record = json.loads((tmp_path / again.hydra.sweep.dir / SWEEP_RECORD).read_text())
    assert record["parent_run_id"] == first.parent_run_id

    other = multirun_config(tmp_path)
    other.hydra.sweep.dir = "outputs/multirun/2025-01-02/09-00-00"
    other.hydra.overrides.task = ["loss=l1,l2", "sweep.resume=true"]
    other.sweep = {"resume": True}
    fresh = MlflowSweepCallback()
    fresh.on_multirun_start(other)
    assert fresh.parent_run_id != first.parent_run_id
    forget(resumed, fresh)


def test_resume_follows_the_sweep_directory_given_again(tmp_path: Path) -> None:
    first = MlflowSweepCallback()
    first.on_multirun_start(multirun_config(tmp_path))
    changed = multirun_config(tmp_path)  # the same directory, another command: the record names the parent
    changed.hydra.overrides.task = ["loss=l1,l2,huber", "seed=1"]
    changed.sweep = {"resume": True}
    resumed = MlflowSweepCallback()
    resumed.on_multirun_start(changed)
    assert resumed.parent_run_id == first.parent_run_id
    forget(first, resumed)


def forget(*callbacks: MlflowSweepCallback) -> None:
    """Drop the callbacks' exit handlers: their sweeps' stores are gone when this process exits."""
    for callback in callbacks:
        atexit.unregister(callback._end_if_abandoned)
