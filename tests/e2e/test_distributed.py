"""DDP with real processes: starting them, the loss over the global batch (mined tuples and gradients equal to
one process's), one MLflow run, sweeps, submitit's local executor, and SIGTERM. The shares of the data and the
process planning are unit tests (``tests/unit/test_sharding.py``, ``tests/unit/test_launch.py``).

Tolerance for "DDP equals one process with the global batch": relative 1e-4, absolute 1e-6. Both compute the
same sums in a different order — DDP sums each process's partial gradient and all-reduces them, one process sums
the whole batch in one matrix product — so float32 results differ in the last bits, and training carries that
along: measured over two epochs, at most 7e-6 (cross-entropy) and 2e-5 (triplet + semi-hard miner) relative.
A real difference is far larger: without the world-size gradient scale the same runs differ by 8 % and 40 %.
The runs use SGD with momentum on purpose: Adam divides the gradient by its own running scale, so a gradient
off by a constant factor would train exactly alike and go unnoticed.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from helpers import (
    child_env,
    compose_config,
    default_store_runs,
    own_miner_names,
    run_lossforge,
    sweep_runs,
    tuple_sets,
)
from mlflow import MlflowClient

from lossforge import distributed
from lossforge.distributed import Processes
from lossforge.registry import LOSSES, MINERS
from lossforge.tracking import SWEEP_RECORD
from lossforge.training.run import train

pytestmark = pytest.mark.slow

TINY = ["model.hidden=[16]", "trainer.enable_progress_bar=false"]
RELATIVE, ABSOLUTE = 1e-4, 1e-6


# -- starting the other processes -----------------------------------------------------------------------


def _report_place(rank: int, ready, out: str) -> None:
    ready()
    Path(out, f"rank{rank}").write_text(" ".join(os.environ[n] for n in ("RANK", "LOCAL_RANK", "WORLD_SIZE")))


def _die_while_starting(rank: int, ready, out: str) -> None:
    raise RuntimeError("rank 1 breaks before training")


def test_a_one_process_ddp_run_leaves_nothing_behind_for_the_next_job(tmp_path: Path) -> None:
    # Lightning sets LOCAL_RANK etc. and opens a one-process group here; left behind, the next job of a
    # sweep (say trainer.devices=2) would look launched from outside and join that stale group.
    train(compose_config(*TINY, "trainer.max_epochs=1", "trainer=ddp_cpu", "trainer.devices=1"), base_dir=tmp_path)
    assert not any(name in os.environ for name in distributed.LAUNCH_VARIABLES)
    assert not torch.distributed.is_initialized()


def test_start_processes_places_the_others_and_restores_this_process(tmp_path: Path) -> None:
    processes = Processes(rank=0, world_size=3, per_node=3, start_here=True)
    threads = torch.get_num_threads()
    with distributed.start_processes(processes, _report_place, (str(tmp_path),)):
        assert (os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["WORLD_SIZE"]) == ("0", "0", "3")
    assert [(tmp_path / f"rank{r}").read_text() for r in (1, 2)] == ["1 1 3", "2 2 3"]
    assert not any(name in os.environ for name in distributed.LAUNCH_VARIABLES)  # the next sweep job starts clean
    assert torch.get_num_threads() == threads


def test_a_process_that_dies_while_starting_is_named_instead_of_awaited(tmp_path: Path) -> None:
    processes = Processes(rank=0, world_size=2, per_node=2, start_here=True)
    with pytest.raises(distributed.WorkerFailedError, match=r"process rank 1 failed .* before training started"):
        with distributed.start_processes(processes, _die_while_starting, (str(tmp_path),)):
            pytest.fail("rank 0 went on although rank 1 died")
    assert "RANK" not in os.environ


# -- the loss over the global batch, in two real gloo processes -----------------------------------------

WORLD_SIZE, PER_PROCESS = 2, 32


def _example_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(WORLD_SIZE * PER_PROCESS, 8, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 4, (WORLD_SIZE * PER_PROCESS,), generator=generator)
    return features, labels


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Linear(8, 6).double()


def _loss_for(miner: torch.nn.Module) -> torch.nn.Module:
    return LOSSES.build("triplet" if miner.tuple_kind == "triplet" else "contrastive")


def _mine_and_backpropagate(rank: int, port: int, out: str) -> None:
    """One DDP process: its share (every WORLD_SIZE-th sample, as GlobalBatchShard deals them), every miner."""
    faulthandler.dump_traceback_later(90, exit=True)  # a hang shows where it hangs, before the test's 120 s
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60)
    )
    try:
        features, labels = _example_batch()
        sample_ids = torch.arange(len(labels))
        model = torch.nn.parallel.DistributedDataParallel(_model())
        results = {}
        for name in own_miner_names():  # not a third-party plugin's: not ours to test
            miner = MINERS.build(name)
            model.zero_grad()
            local = model(features[rank::WORLD_SIZE])  # (32, 6)
            local.retain_grad()
            embeddings, global_labels, scale = distributed.global_batch(local, labels[rank::WORLD_SIZE])  # (64, 6)
            ids = distributed.gather(sample_ids[rank::WORLD_SIZE])  # which sample each gathered row is
            tuples = miner(embeddings, global_labels)
            loss = _loss_for(miner)(embeddings, global_labels, tuples)
            (loss * scale).backward()  # DDP averages the parameter gradients over the two processes here
            results[name] = {
                "tuples": [ids[index] for index in tuples],
                "loss": loss.detach(),
                "local_grad": local.grad,
                "ids": sample_ids[rank::WORLD_SIZE],
                "scale": scale,
                "weight_grad": model.module.weight.grad.clone(),
            }
        torch.save(results, Path(out) / f"rank{rank}.pt")
        # Tear DDP down while its process group still exists: a DDP reducer freed after
        # destroy_process_group (when this frame's locals go) hung this process in about one run of three.
        del model, results
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_mine_the_global_batch_and_get_the_single_process_gradient(tmp_path: Path) -> None:
    context = torch.multiprocessing.start_processes(
        _mine_and_backpropagate,
        args=(distributed.free_port(), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):  # True once all have ended
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two gloo processes did not finish within 120 s")
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]

    features, labels = _example_batch()
    for name in own_miner_names():
        model, miner = _model(), MINERS.build(name)
        embeddings = model(features)  # (64, 6), sample i in row i
        embeddings.retain_grad()
        tuples = miner(embeddings, labels)
        loss = _loss_for(miner)(embeddings, labels, tuples)
        loss.backward()
        assert len(tuples[0]) > 0, name
        for result in (shares[name] for shares in ranks):
            # the same tuples as one process mining the 64-sample batch, in sample ids
            assert tuple_sets(result["tuples"]) == tuple_sets(list(tuples)), name
            assert torch.allclose(result["loss"], loss.detach(), rtol=1e-12), name
            # the gradient reaches this process's own rows (× world size, undone by DDP's average) ...
            assert result["scale"] == WORLD_SIZE
            expected = embeddings.grad[result["ids"]] * WORLD_SIZE
            assert torch.allclose(result["local_grad"], expected, rtol=1e-10, atol=1e-12), name
            # ... and after DDP's average the parameters get exactly the single-process gradient
            assert torch.allclose(result["weight_grad"], model.weight.grad, rtol=1e-10, atol=1e-12), name


# -- the real command: DDP equals one process with the global batch, and records once ------------------


def history(client: MlflowClient, run_id: str) -> dict[str, list[float]]:
    keys = client.get_run(run_id).data.metrics
    return {
        key: [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)] for key in keys
    }


SETUPS = {
    "cross_entropy": [],
    "triplet+semihard": ["model=embedding_mlp", "model.embedding_dim=8", "loss=triplet", "miner=semihard_triplets"],
}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_ddp_cpu_gives_the_metrics_of_one_process_with_the_global_batch_and_one_run(setup: str, tmp_path: Path) -> None:
    # SGD with momentum 0.9 (until optimizer=sgd was really built, this ran Adam). lr 0.01: at 0.1 the
    # triplet runs part by ~1e-3 within two epochs — mining is discrete, so a difference in float rounding
    # between one process and two can change the chosen triplets, and a large step amplifies it.
    overrides = [*TINY, "trainer.max_epochs=2", "optimizer=sgd", "optimizer.lr=0.01", *SETUPS[setup]]
    ddp = run_lossforge(tmp_path, *overrides, "trainer=ddp_cpu", f"batch_size={PER_PROCESS}")
    assert ddp.returncode == 0, ddp.stderr[-4000:]
    client, ddp_runs = default_store_runs(tmp_path)
    (run,) = ddp_runs  # rank 1 created no run of its own
    assert run.info.status == "FINISHED" and run.data.params["trainer.devices"] == "2"
    assert ddp.stdout.count("Test metrics:") == 1 and ddp.stdout.count("MLflow run:") == 1
    (run_dir,) = (tmp_path / "outputs" / "runs").glob("*/*")  # one Hydra job directory, one run record
    assert [p.relative_to(run_dir) for p in tmp_path.rglob("lossforge_run.json")] == [Path("lossforge_run.json")]
    assert run.data.tags["lossforge.output_dir"] == str(run_dir)
    assert run.data.tags["lossforge.device"].endswith("(2 processes)")

    # the baseline in this process (same store): one process, batch_size = 2 × the per-process one
    cfg = compose_config(*overrides, "trainer=cpu", f"batch_size={WORLD_SIZE * PER_PROCESS}")
    train(cfg, base_dir=tmp_path, output_dir=tmp_path / "single")
    (single,) = [r for r in default_store_runs(tmp_path)[1] if r.info.run_id != run.info.run_id]
    expected, got = history(client, single.info.run_id), history(client, run.info.run_id)
    assert set(got) == set(expected)
    for key, values in expected.items():  # every epoch's train/val metrics, and the test metrics
        assert got[key] == pytest.approx(values, rel=RELATIVE, abs=ABSOLUTE), key


def test_a_ddp_sweep_is_one_job_per_point_under_one_parent_run(tmp_path: Path) -> None:
    result = run_lossforge(
        tmp_path, "-m", "loss=cross_entropy,focal", "trainer=ddp_cpu", "trainer.max_epochs=1", *TINY, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    parent, children = sweep_runs(tmp_path)
    assert len(default_store_runs(tmp_path)[1]) == 3 and parent.info.status == "FINISHED"  # not one sweep per rank
    assert sorted(c.data.params["loss.name"] for c in children) == ["cross_entropy", "focal"]
    assert {c.info.status for c in children} == {"FINISHED"}
    outputs = sorted(p.name for p in (tmp_path / "outputs").iterdir())  # the store's lock file beside it
    assert outputs == ["mlartifacts", "mlflow.db", "mlflow.db.lock", "multirun"]
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    # the jobs, Hydra's record, the parent run's record, and the comparison the sweep ends with
    assert sorted(p.name for p in sweep_dir.iterdir()) == sorted(
        ["0", "1", "multirun.yaml", SWEEP_RECORD, "compare.png"]
    )
    assert sorted(c.data.tags["lossforge.output_dir"] for c in children) == [str(sweep_dir / n) for n in "01"]


def test_a_ddp_sweep_through_submitits_local_executor(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_lossforge(
        tmp_path,
        "-m",
        "hydra/launcher=submitit_local_ddp",
        "trainer=ddp_cpu",
        "seed=0,1",
        "trainer.max_epochs=1",
        *TINY,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    parent, children = sweep_runs(tmp_path)
    assert len(default_store_runs(tmp_path)[1]) == 3 and parent.info.status == "FINISHED"
    assert sorted(c.data.params["seed"] for c in children) == ["0", "1"]
    assert {c.info.status for c in children} == {"FINISHED"}
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert {p.name for p in sweep_dir.iterdir()} >= {"0", "1", ".submitit"}
    assert all(Path(c.data.tags["lossforge.output_dir"]).parent == sweep_dir for c in children)


def test_sigterm_to_rank_0_stops_every_process_together_and_marks_the_run_killed(tmp_path: Path) -> None:
    overrides = ["trainer=ddp_cpu", "trainer.max_epochs=200", "model.hidden=[64]", "trainer.enable_progress_bar=false"]
    process = subprocess.Popen(
        [sys.executable, "-m", "lossforge", *overrides],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "outputs" / "runs").glob("*/*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline, "training never got going"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # rank 0 alone, as `kill <pid>` or a scheduler does
    try:  # the other process holds the same stdout: this also waits for it to end
        output = process.communicate(timeout=90)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the processes deadlocked after SIGTERM")
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "KILLED"
    assert list((tmp_path / "outputs" / "runs").glob("*/*/checkpoints/interrupted.ckpt"))
