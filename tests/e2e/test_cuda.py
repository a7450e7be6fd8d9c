"""On a CUDA GPU: every registered loss and miner gives the CPU's answer, and real runs train there.

Skipped where torch sees no GPU (CI has none); run on a GPU machine with ``pytest tests/e2e/test_cuda.py``.
``LOSSFORGE_TEST_DEVICE=cpu`` runs the same checks against the CPU (to try the tests themselves anywhere).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import default_store_runs, own_loss_names, own_miner_names, run_lossforge, tuple_sets

from lossforge import build_loss, build_miner
from lossforge.contract import prepare_loss
from lossforge.registry import LOSSES
from lossforge.testing import make_inputs

DEVICE = torch.device(os.environ.get("LOSSFORGE_TEST_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(autouse=True)
def no_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 on the GPU is compared with float64 at 1e-4: TF32 matmuls (torch's default is off) would not pass."""
    if DEVICE.type != "cuda":
        return
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _forward_backward(name: str, reduction: str, device: torch.device, dtype: torch.dtype):
    loss_class = LOSSES.load(name)
    task = loss_class.tasks[0]
    prediction, target = make_inputs(task, batch=32, num_classes=5, dim=6, dtype=torch.float64, seed=1)
    loss = build_loss(name, reduction=reduction)
    torch.manual_seed(0)  # a learnable loss's parameters are drawn alike for both devices
    num_classes = {"binary": 2, "regression": 6}.get(task, 5)
    embedding_dim = prediction.shape[1] if task == "metric" else None
    prepare_loss(loss, targets=target, num_classes=num_classes, embedding_dim=embedding_dim)  # as training does
    loss = loss.to(device)
    leaf = prediction.detach().to(device=device, dtype=dtype).requires_grad_(True)
    target = target.to(device=device, dtype=dtype if target.is_floating_point() else target.dtype)
    value = loss(leaf, target, None) if task == "metric" else loss(leaf, target)
    value.sum().backward()
    return value.detach().double().cpu(), leaf.grad.double().cpu()


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", own_loss_names())
def test_every_loss_on_cuda_matches_the_cpu(name: str, reduction: str) -> None:
    cpu_value, cpu_grad = _forward_backward(name, reduction, torch.device("cpu"), torch.float64)
    value, grad = _forward_backward(name, reduction, DEVICE, torch.float64)
    torch.testing.assert_close(value, cpu_value, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, cpu_grad, rtol=1e-10, atol=1e-12)
    value32, grad32 = _forward_backward(name, reduction, DEVICE, torch.float32)
    torch.testing.assert_close(value32, cpu_value, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad32, cpu_grad, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", own_miner_names())
def test_every_miner_on_cuda_mines_the_cpus_tuples(name: str) -> None:
    embeddings, labels = make_inputs("metric", batch=64, num_classes=6, dim=8, dtype=torch.float64, seed=2)
    embeddings = torch.nn.functional.normalize(embeddings.detach(), dim=1)
    no_sampling = {"max_triplets": 10**9} if name == "all_triplets" else {}  # the same set on both devices
    miner = build_miner(name, **no_sampling)
    expected = miner(embeddings, labels)
    mined = miner(embeddings.to(DEVICE), labels.to(DEVICE))
    assert all(indices.device.type == DEVICE.type for indices in mined)
    assert tuple_sets(mined) == tuple_sets(expected)


def _run(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """The command on the GPU (``trainer=gpu`` unless the overrides name a trainer); against the CPU,
    ``trainer=gpu`` becomes ``trainer=cpu`` and ``trainer=ddp`` becomes ``trainer=ddp_cpu``."""
    if not any(o.startswith("trainer=") for o in overrides):
        overrides = ("trainer=gpu", *overrides)
    if DEVICE.type != "cuda":
        cpu = {"trainer=gpu": "trainer=cpu", "trainer=ddp": "trainer=ddp_cpu"}
        overrides = tuple(cpu.get(o, o) for o in overrides)
    return run_lossforge(cwd, "trainer.enable_progress_bar=false", *overrides)


@pytest.mark.parametrize(
    "overrides, metric, at_least",
    [
        ((), "test/accuracy", 0.95),  # the lecture's MLP on the digits, 20 epochs
        (("loss=weighted_cross_entropy", "dataset=digits_imbalanced"), "test/f1_macro", 0.5),
        (("loss=triplet", "miner=semihard_triplets", "trainer.max_epochs=10"), "test/recall_at_1", 0.9),
        (("loss=bce", "dataset=digits_multilabel"), "test/subset_accuracy", 0.8),
        (("trainer=ddp", "trainer.devices=1", "trainer.max_epochs=5"), "test/accuracy", 0.9),  # NCCL
    ],
    ids=["default", "weighted_ce_imbalanced", "triplet_semihard", "bce_multilabel", "ddp_nccl"],
)
def test_real_runs_train_on_the_gpu(tmp_path: Path, overrides: tuple[str, ...], metric: str, at_least: float) -> None:
    result = _run(tmp_path, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED"
    device = run.data.tags["lossforge.device"]
    assert device.startswith(f"{DEVICE.type}: ") and device.endswith("(1 process)"), device
    assert run.data.metrics[metric] >= at_least, (device, metric, run.data.metrics[metric])
