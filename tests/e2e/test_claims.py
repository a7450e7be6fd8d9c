"""The lecture's teaching points, as acceptance tests: real training runs on the bundled data.

Each test trains with the same settings the `experiment=` presets use (fewer seeds), in-process, into a
temporary MLflow store. CPU training is deterministic for a given seed, so these are not flaky on one
machine; the margins asserted are far inside what the README's multi-seed tables show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compose_config

from lossforge.training.run import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]


def run(tmp_path: Path, *overrides: str) -> dict[str, float]:
    cfg = compose_config("trainer.enable_progress_bar=false", "logger.log_checkpoint=false", *overrides)
    return train(cfg, base_dir=tmp_path, output_dir=tmp_path / "run")


def test_l1_is_more_robust_to_outliers_than_l2_and_huber_sits_between(tmp_path: Path) -> None:
    mae = {
        loss: run(tmp_path, "experiment=outliers", f"loss={loss}", "trainer.max_epochs=20")["test/mae"]
        for loss in ("l1", "huber", "l2")
    }
    assert mae["l1"] < mae["huber"] < mae["l2"], mae


def test_weighted_cross_entropy_helps_minority_classes(tmp_path: Path) -> None:
    def macro_f1(loss: str) -> float:
        return sum(run(tmp_path, "experiment=imbalance", f"loss={loss}", f"seed={s}")["test/f1_macro"] for s in (0, 1))

    assert macro_f1("weighted_cross_entropy") > macro_f1("cross_entropy")


def test_same_accuracy_different_cross_entropy(tmp_path: Path) -> None:
    softmax = run(tmp_path, "loss=cross_entropy")
    hinge = run(tmp_path, "loss=multiclass_hinge")
    assert abs(softmax["test/accuracy"] - hinge["test/accuracy"]) < 0.02
    assert hinge["test/nll"] > 1.3 * softmax["test/nll"] and hinge["test/ece"] > 2 * softmax["test/ece"]


def test_triplet_with_semihard_mining_reaches_recall_at_1_of_095_on_digits(tmp_path: Path) -> None:
    metrics = run(tmp_path, "loss=triplet", "miner=semihard_triplets")
    assert metrics["test/recall_at_1"] >= 0.95
