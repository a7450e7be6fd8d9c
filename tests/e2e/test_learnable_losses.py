"""Learnable losses (class proxies) in real runs: the proxies train, are saved in checkpoints and restored by
``resume=``; a checkpoint whose proxies have another size is refused with the loss's name; under DDP every
process starts with the same proxies and the run equals one process with the global batch (SGD with momentum,
so a proxy gradient off by the world size would show: see ``test_distributed.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import compose_config, default_store_runs, run_lossforge
from mlflow import MlflowClient
from omegaconf import OmegaConf

from lossforge.training import run as run_module
from lossforge.training.build import Built, build
from lossforge.training.resume import CONFIG_RECORD, ResumeError
from lossforge.training.run import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]

SMALL = ["model=embedding_mlp", "model.hidden=[16]", "model.embedding_dim=16", "trainer.enable_progress_bar=false"]


def _capture_builds(monkeypatch: pytest.MonkeyPatch) -> list[Built]:
    built: list[Built] = []

    def recording(cfg: Any) -> Built:
        built.append(build(cfg))
        return built[-1]

    monkeypatch.setattr(run_module, "build", recording)
    return built


def test_proxies_train_are_checkpointed_and_restored_by_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _capture_builds(monkeypatch)
    run_dir = tmp_path / "run"
    train(compose_config(*SMALL, "loss=proxy_anchor", "trainer.max_epochs=1"), base_dir=tmp_path, output_dir=run_dir)
    (first,) = built
    assert first.module.loss in list(first.module.children())  # a submodule: in the state_dict, all-reduced by DDP
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    saved = checkpoint["state_dict"]["loss.proxies"]
    assert saved.shape == (10, 16)  # digits' 10 classes, the model's 16-d embeddings: sized from the data
    fresh = build(compose_config(*SMALL, "loss=proxy_anchor", "trainer.max_epochs=1")).module.loss.proxies
    assert not torch.allclose(saved, fresh)  # they trained (from the same seeded start)

    train(compose_config(f"resume={run_dir}"), base_dir=tmp_path)
    resumed = built[-1].module.loss.proxies
    assert torch.equal(resumed.detach(), saved)  # the resumed run holds the checkpoint's proxies, not new ones
    _, (run,) = default_store_runs(tmp_path)  # the same run, continued
    assert run.data.tags["lossforge.resumed"] == "true"


def test_resume_with_another_embedding_size_names_the_loss(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(compose_config(*SMALL, "loss=arcface", "trainer.max_epochs=1"), base_dir=tmp_path, output_dir=run_dir)
    record = OmegaConf.load(run_dir / CONFIG_RECORD)
    record.model.embedding_dim = 8  # the model changed since the checkpoint
    record.trainer.max_epochs = 2
    OmegaConf.save(record, run_dir / CONFIG_RECORD)
    with pytest.raises(ResumeError, match=r"Loss 'arcface': the checkpoint's 'proxies' is \(10, 16\), this run's is "):
        train(compose_config(f"resume={run_dir}"), base_dir=tmp_path)


def test_ddp_starts_with_equal_proxies_and_trains_like_one_process(tmp_path: Path) -> None:
    overrides = [*SMALL, "loss=proxy_anchor", "trainer.max_epochs=2", "optimizer=sgd", "optimizer.lr=0.01"]
    ddp = run_lossforge(tmp_path, *overrides, "trainer=ddp_cpu", "batch_size=32")
    assert ddp.returncode == 0, ddp.stderr[-4000:]
    client, (ddp_run,) = default_store_runs(tmp_path)
    train(compose_config(*overrides, "trainer=cpu", "batch_size=64"), base_dir=tmp_path, output_dir=tmp_path / "one")
    (single,) = [run for run in default_store_runs(tmp_path)[1] if run.info.run_id != ddp_run.info.run_id]
    expected, got = _history(client, single.info.run_id), _history(client, ddp_run.info.run_id)
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values, rel=1e-4, abs=1e-6), key


def _history(client: MlflowClient, run_id: str) -> dict[str, list[float]]:
    keys = client.get_run(run_id).data.metrics
    return {
        key: [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)] for key in keys
    }
