"""A user's own data and model, the framework side (lossforge.training.build, lossforge.data, hydra_options,
the command line's pre-flight checks): the split seed, the cache, plugin datasets and models discovered from a
real installed package that never imports lossforge, --config-dir options, images on the device, bf16."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from helpers import Site

import lossforge.data as data_module
from lossforge.data import clear_cache, load_dataset
from lossforge.data.device import InputPipeline
from lossforge.hydra_options import compose
from lossforge.overrides import check_overrides
from lossforge.registry import DATASETS, MODELS, RegistryError
from lossforge.training.build import build

THIRD_PARTY_DATA = """
import numpy as np


def blobs(*, seed, centres: int = 3, per_class: int = 20, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(centres), per_class)
    points = rng.normal(size=(labels.size, 1, 2, 2)) * spread + labels[:, None, None, None]
    order = rng.permutation(labels.size)
    parts = np.array_split(order, [int(0.7 * labels.size), int(0.85 * labels.size)])
    return {name: (points[index], labels[index]) for name, index in zip(("train", "val", "test"), parts)}


blobs.task = "multiclass"
blobs.num_classes = 3
"""
THIRD_PARTY_MODEL = """
import math
from torch import nn


class Tiny(nn.Module):
    def __init__(self, *, input_shape, output_dim, width: int = 8):
        super().__init__()
        flat = math.prod(input_shape)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(flat, width), nn.ReLU(), nn.Linear(width, output_dim))

    def forward(self, features):
        return self.net(features)
"""


@pytest.fixture
def third_party(site: Site) -> Site:
    site.install(
        "lf-test-data",
        package="lf_test_data",
        files={"data.py": THIRD_PARTY_DATA, "nets.py": THIRD_PARTY_MODEL},
        entry_points={
            "lossforge.datasets": {"blobs": "lf_test_data.data:blobs", "digits": "lf_test_data.data:blobs"},
            "lossforge.models": {"tiny": "lf_test_data.nets:Tiny"},
        },
    )
    return site


def test_a_third_party_dataset_and_model_are_discovered_with_provenance_and_build(third_party: Site) -> None:
    assert "lf_test_data.data" not in sys.modules  # listing names imports nothing
    assert {"blobs"} <= set(DATASETS.names()) and "tiny" in MODELS.names()
    assert (DATASETS.info("blobs").distribution, MODELS.info("tiny").provider) == (
        "lf-test-data",
        "lf-test-data==0.1.0",
    )
    assert "lf-test-data" in str(DATASETS.conflicts()["digits"])  # a name two packages register is refused
    with pytest.raises(RegistryError, match=r"registered by more than one package.*'lossforge:digits'"):
        DATASETS.info("digits")
    built = build(compose(["dataset=blobs", "model=tiny", "model.width=4", "dataset.per_class=10"]))
    assert built.data.input_shape == (1, 2, 2) and built.data.num_outputs == 3
    assert built.provenance["model.parameters"] == str(4 * 4 + 4 + 4 * 3 + 3)
    with pytest.raises(Exception, match=r"per_class"):  # typed: a plugin's int parameter refuses text
        compose(["dataset=blobs", "dataset.per_class=many"])
    assert check_overrides(["dataset=blob"]) == (
        "unknown dataset 'blob'. Did you mean 'blobs'? Available: "
        + ", ".join(sorted(set(DATASETS.names()) | _own("dataset")))
        + ". `lossforge list --kind dataset` shows them, with their packages."
    )


def _own(group: str) -> set[str]:
    from lossforge.hydra_options import own_yaml_options

    return own_yaml_options(group)


def test_the_run_seed_never_changes_the_split_and_the_split_seed_does() -> None:
    first, second = (build(compose([f"seed={seed}", "model.hidden=[8]"])) for seed in (0, 1))
    assert first.provenance["data.test_digest"] == second.provenance["data.test_digest"]
    assert first.data is second.data  # built once per process
    other = build(compose(["dataset.split_seed=1", "model.hidden=[8]"]))
    assert other.provenance["data.test_digest"] != first.provenance["data.test_digest"]


def test_a_dataset_is_built_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    calls = []
    real = data_module.build_dataset
    monkeypatch.setattr(data_module, "build_dataset", lambda name, **params: calls.append(name) or real(name, **params))
    for _ in range(3):
        load_dataset({"name": "diabetes", "split_seed": 0, "augment": None})
    load_dataset({"name": "diabetes", "split_seed": 1})
    assert calls == ["diabetes", "diabetes"]


def test_a_config_dir_option_naming_a_registered_dataset_passes_the_checks_and_builds(tmp_path: Path) -> None:
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "my_digits.yaml").write_text(
        "name: digits\nval_fraction: 0.2\ntest_fraction: 0.2\nsplit_seed: 3\n"
    )
    assert check_overrides(["dataset=my_digits"]) is not None  # unknown without the folder
    assert check_overrides(["--config-dir", str(tmp_path), "dataset=my_digits"]) is None
    cfg = compose(["dataset=my_digits", "model.hidden=[8]"], config_dir=str(tmp_path))
    built = build(cfg)
    assert len(built.data.test) == round(0.2 * 1797) and cfg.dataset.split_seed == 3


def images(*, seed: int, size: int = 24) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.arange(size) % 3
    pixels = (rng.random((size, 3, 8, 8)) * 60 + labels[:, None, None, None] * 60).astype(np.uint8)
    return {name: (pixels, labels) for name in ("train", "val", "test")}


images.task = "multiclass"  # type: ignore[attr-defined]
images.mean = (0.5, 0.5, 0.5)  # type: ignore[attr-defined]
images.std = (0.25, 0.25, 0.25)  # type: ignore[attr-defined]


@pytest.fixture
def image_dataset() -> object:
    DATASETS.register("tiny_images_test", images)
    yield images
    DATASETS.refresh()


def test_uint8_images_are_normalised_on_the_device_and_augmented_in_training_only(image_dataset: object) -> None:
    cfg = compose(
        [
            "dataset=tiny_images_test",
            "model=cnn",
            "model.channels=[4]",
            "+dataset.augment=[horizontal_flip,random_resized_crop]",
        ]
    )
    module = build(cfg).module
    pipeline = module.model.inputs
    assert isinstance(pipeline, InputPipeline) and pipeline.augment is not None
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 3, 8, 8)
    expected = (batch.float() / 255 - 0.5) / 0.25
    assert torch.allclose(pipeline.eval()(batch), expected)
    pipeline.train()
    torch.manual_seed(0)
    assert not torch.allclose(pipeline(batch), expected)


def test_bf16_mixed_trains_the_image_path_on_cpu_with_a_float32_loss(image_dataset: object, tmp_path: Path) -> None:
    built = build(compose(["dataset=tiny_images_test", "model=resnet", "model.width=4", "batch_size=8"]))
    features, targets = built.data.train.features, built.data.train.targets
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(features, targets), batch_size=8)
    losses: list[torch.Tensor] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, index) -> None:  # type: ignore[no-untyped-def]
            losses.append(outputs["loss"] if isinstance(outputs, dict) else outputs)

    trainer = L.Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[Record()],
    )
    trainer.fit(built.module, loader)
    assert len(losses) == 3 and all(loss.dtype == torch.float32 and torch.isfinite(loss) for loss in losses)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert built.module.model(features[:2]).dtype == torch.float32  # the loss sees float32 outputs


class OnDisk(torch.utils.data.Dataset):
    """Images decoded from .npy files one sample at a time, as a dataset too large for memory would be."""

    def __init__(self, root: Path, labels: np.ndarray) -> None:
        self.root, self.targets, self.fingerprint = root, labels, f"{root.name}:{len(labels)}"

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return np.load(self.root / f"{index}.npy"), int(self.targets[index])


def test_a_streamed_dataset_trains_and_is_logged_without_being_held_in_memory(
    tmp_path: Path, default_store: str
) -> None:
    from mlflow import MlflowClient

    from lossforge.data.base import StreamedSplit
    from lossforge.training.run import train

    def on_disk(*, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        splits = {}
        for name, size in (("train", 24), ("val", 9), ("test", 9)):
            root = tmp_path / name
            root.mkdir(exist_ok=True)
            labels = np.arange(size) % 3
            for index, label in enumerate(labels):
                np.save(root / f"{index}.npy", (rng.random((3, 8, 8)) * 80 + label * 80).astype(np.uint8))
            splits[name] = OnDisk(root, labels)
        return splits

    on_disk.task, on_disk.mean, on_disk.std = "multiclass", (0.5,) * 3, (0.25,) * 3  # type: ignore[attr-defined]
    DATASETS.register("on_disk_test", on_disk)
    try:
        cfg = compose(
            ["dataset=on_disk_test", "model=cnn", "model.channels=[4]", "trainer.max_epochs=1", "batch_size=8"]
        )
        built = build(cfg)
        assert isinstance(built.data.train, StreamedSplit) and built.data.train.dtype == torch.uint8
        metrics = train(cfg, base_dir=tmp_path, summary=False)
    finally:
        DATASETS.refresh()
        clear_cache()
    assert "test/accuracy" in metrics
    client = MlflowClient(default_store)
    (run,) = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    assert run.data.tags["data.test_digest"] == built.provenance["data.test_digest"]
