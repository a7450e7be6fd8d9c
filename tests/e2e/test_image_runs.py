"""Training on images end to end: a folder of PNG/JPEG files with a CNN, and a triplet loss on a miniature
CUB-200-2011 (class-disjoint) with retrieval metrics — each one epoch of a few dozen 8×8 images, in process,
into a real SQLite MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compose_config, default_store_runs
from image_layouts import class_folder, write_cub

from lossforge.data.images import IMAGE_SUFFIXES, file_list_sha256
from lossforge.training.run import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_store")]

FAST = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "model=cnn"]


def test_a_folder_of_images_trains_a_cnn_and_logs_its_file_list_digest(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "pets", per_class=12)
    cfg = compose_config(*FAST, "dataset=image_folder", f"dataset.root={root}", "dataset.image_size=8")
    metrics = train(cfg, base_dir=tmp_path)
    assert {"test/accuracy", "test/f1_macro"} <= set(metrics)
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.params["dataset.name"] == "image_folder"
    files = [path for path in root.rglob("*") if path.suffix in IMAGE_SUFFIXES]
    assert run.data.tags["data.file_list_sha256"] == file_list_sha256(root, files)  # provenance, not pixels
    assert run.data.tags["data.num_files"] == "36"
    assert int(run.data.tags["model.parameters"]) > 0


def test_a_triplet_loss_trains_on_class_disjoint_images_with_retrieval_metrics(tmp_path: Path) -> None:
    write_cub(tmp_path / "cub", classes=6, per_class=8)
    cfg = compose_config(
        *FAST, "dataset=cub200", f"dataset.root={tmp_path / 'cub'}", "dataset.image_size=8", "loss=triplet"
    )
    metrics = train(cfg, base_dir=tmp_path)
    assert {"test/map_at_r", "test/recall_at_1"} <= set(metrics)  # retrieval on the 3 classes never trained on
    _, (run,) = default_store_runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["data.dataset"] == "cub200"
