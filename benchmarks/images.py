"""Image data speed (issue #23 §5): can the streamed loader feed training, and what does lossforge cost?

Data: ``--images`` random 32×32 RGB images in ``--classes`` classes, written once as PNG files into an image
folder in a temporary directory (``root/<class>/<n>.png``), read back by ``dataset=image_folder``.
Model: the ResNet-18-style network of ``lossforge.models.resnet`` (CIFAR stem, ``--width`` channels in the
first stage: 64 in the paper, 16 by default here so that a CPU epoch takes seconds, not minutes), Adam
(lr 1e-3), cross-entropy, batch ``--batch-size``; images are converted from ``uint8`` and normalised in the
step, as on the training device.

1. **Streaming vs the training step.** ``image_folder`` with ``memory_budget_mb=0`` streams every split
   from disk (:class:`lossforge.data.images.ImageFiles`); the *loader alone* is one pass over the training
   split through a ``DataLoader`` with the dataset's default workers (``len(os.sched_getaffinity(0))``),
   nothing else done with the batches. The *training step* is forward + backward + ``Adam.step`` on the
   same images held in memory. Reported: images/s of each and their ratio (the claim: the loader
   delivers at least twice what the step consumes, so streaming never starves training).
2. **lossforge vs a hand-written loop** (ResNet-18, the images in memory, CPU, one training epoch without
   validation): lossforge's training path — what ``lossforge.training.build.build`` builds for
   ``dataset=image_folder model=resnet`` (its ``LossTask`` with the registered ``cross_entropy``, the model
   with its device-side ``uint8 → float`` normalisation), its ``make_loader``, and a Lightning ``Trainer``
   with ``conf/trainer/default.yaml`` and no validation — against a plain PyTorch loop (``randperm``, batched
   slicing, forward, ``F.cross_entropy``, backward, ``Adam.step``) over an identically built model on the
   same images (the claim: at most 1.10×). Reported: the epoch (``fit`` or the loop, start to end) and the
   steady-state step (the median interval between consecutive step starts after the first), which leaves
   out the Trainer's fixed start and end costs an epoch of few steps magnifies. Repeats interleaved, each
   variant starting in turn; medians.

Usage::

    python benchmarks/images.py                          # 2,048 PNG files, width 16
    python benchmarks/images.py --width 64 --repeats 5   # the paper's width
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import OtherLoad, add_common_arguments, machine, median, ratio, wait_for_quiet, write_tables
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lossforge.data.images import default_num_workers, image_folder


def write_folder(root: Path, *, images: int, classes: int, size: int, seed: int = 0) -> None:
    """``images`` random RGB PNG files of ``size`` px, spread evenly over ``classes`` class folders."""
    rng = np.random.default_rng(seed)
    for index in range(images):
        folder = root / f"class_{index % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:06d}.png")


def resnet(width: int, classes: int, size: int) -> nn.Module:
    """lossforge's ResNet-18-style model (data's ``lossforge.models.resnet``)."""
    try:
        from lossforge.models.resnet import ResNet
    except ImportError as error:
        raise SystemExit(
            f"lossforge.models.resnet is not available in this checkout ({error}); this script needs it"
        ) from error
    return ResNet(input_shape=(3, size, size), output_dim=classes, depth=18, width=width)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255.0 - mean) / std  # (B, C, H, W) float32


def loader_images_per_second(split: Any, *, batch_size: int, workers: int) -> float:
    loader = DataLoader(split, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=False)
    started = time.perf_counter()
    count = sum(len(targets) for _, targets in loader)
    return count / (time.perf_counter() - started)


def step_images_per_second(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int,
    steps: int,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    order = torch.randperm(len(targets))
    timings = []
    for step in range(steps + 1):  # the first step warms up (allocations) and is not counted
        batch = order[(step * batch_size) % len(order) :][:batch_size]
        started = time.perf_counter()
        loss = F.cross_entropy(model(normalise(images[batch], mean, std)), targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            timings.append(time.perf_counter() - started)
    return batch_size / median(timings)


def built(root: Path, *, width: int, size: int) -> Any:
    """What ``lossforge.training.build.build`` makes of ``dataset=image_folder model=resnet`` on ``root``."""
    from lossforge.hydra_options import compose
    from lossforge.training.build import build

    overrides = [
        "dataset=image_folder",
        f"dataset.root={root}",
        f"dataset.image_size={size}",
        "dataset.val_fraction=0.05",
        "dataset.test_fraction=0.05",
        "model=resnet",
        f"model.width={width}",
        "loss=cross_entropy",
        "optimizer=adam",
        "optimizer.lr=0.001",
    ]
    return build(compose(overrides))


def hand_epoch(root: Path, *, width: int, size: int, batch_size: int) -> tuple[float, list[float]]:
    """One epoch of a plain PyTorch loop over an identically built model (its input normalisation included):
    its seconds and the start time of every step."""
    parts = built(root, width=width, size=size)
    model, images, targets = parts.module.model, parts.data.train.features, parts.data.train.targets
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    started = time.perf_counter()
    starts = []
    order = torch.randperm(len(targets))
    for start in range(0, len(order), batch_size):
        starts.append(time.perf_counter())
        batch = order[start : start + batch_size]
        loss = F.cross_entropy(model(images[batch]), targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    starts.append(time.perf_counter())  # the end of the last step
    return time.perf_counter() - started, starts


def lossforge_epoch(root: Path, *, width: int, size: int, batch_size: int) -> tuple[float, list[float]]:
    """One epoch of lossforge's training path without validation, ``LossTask`` in a ``Trainer``: its seconds
    (``fit`` from start to end) and the start time of every step."""
    import lightning as L
    from omegaconf import OmegaConf

    from lossforge.data.loaders import make_loader

    parts = built(root, width=width, size=size)
    loader = make_loader(parts.data.train, batch_size=batch_size, shuffle=True, seed=0)
    config = OmegaConf.load(Path(__file__).resolve().parent.parent / "conf" / "trainer" / "default.yaml")
    config.max_epochs, config.accelerator, config.limit_val_batches = 1, "cpu", 0
    starts: list[float] = []

    class StepClock(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_index: int) -> None:
            starts.append(time.perf_counter())

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_index: int) -> None:
            if batch_index + 1 == trainer.num_training_batches:
                starts.append(time.perf_counter())  # the end of the last step

    trainer = L.Trainer(
        **OmegaConf.to_container(config),  # type: ignore[arg-type]
        logger=False,
        enable_checkpointing=False,
        callbacks=[StepClock()],
    )
    started = time.perf_counter()
    trainer.fit(parts.module, loader)
    seconds = time.perf_counter() - started
    torch.use_deterministic_algorithms(False)  # the trainer config turned it on; the hand loop runs without
    return seconds, starts


def steady_step(starts: list[float]) -> float:
    """The median interval between consecutive step starts after the first (which pays for warm-up)."""
    intervals = [later - earlier for earlier, later in itertools.pairwise(starts[1:])]
    return median(intervals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2048, help="PNG files in the image folder")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 first-stage channels (64 in the paper)")
    parser.add_argument("--epoch-images", type=int, default=1024, help="images in the in-memory epoch comparison")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--repeats", type=int, default=3)
    add_common_arguments(parser, threads=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    quiet = wait_for_quiet(args.max_wait)
    load = OtherLoad()
    workers = default_num_workers()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "images"
        started = time.perf_counter()
        write_folder(root, images=args.images, classes=args.classes, size=args.size)
        write_seconds = time.perf_counter() - started
        common = dict(seed=0, root=str(root), image_size=args.size, val_fraction=0.05, test_fraction=0.05)
        streamed = image_folder(**common, memory_budget_mb=0)  # type: ignore[arg-type]
        held = image_folder(**common)  # type: ignore[arg-type]
        images, targets = (torch.from_numpy(array) for array in held["train"])
        mean = torch.tensor(held["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(held["std"]).view(1, -1, 1, 1)
        loader_rates = {"default": [], "none": []}
        step_rates = []
        for _ in range(args.repeats):
            loader_rates["default"].append(
                loader_images_per_second(streamed["train"], batch_size=args.batch_size, workers=workers)
            )
            loader_rates["none"].append(
                loader_images_per_second(streamed["train"], batch_size=args.batch_size, workers=0)
            )
            model = resnet(args.width, args.classes, args.size)
            step_rates.append(
                step_images_per_second(
                    model, images, targets, batch_size=args.batch_size, steps=args.steps, mean=mean, std=std
                )
            )
        step = median(step_rates)
        rows = [
            [
                f"loader alone, streamed PNG, {workers} worker(s) (default)",
                f"{median(loader_rates['default']):,.0f}",
                ratio(median(loader_rates["default"]), step),
            ],
            [
                "loader alone, streamed PNG, 0 workers (main process)",
                f"{median(loader_rates['none']):,.0f}",
                ratio(median(loader_rates["none"]), step),
            ],
            [f"training step, ResNet-18 width {args.width}, in memory", f"{step:,.1f}", "1.00×"],
        ]
        tables = [
            (
                "Streaming from an image folder vs the training step (images/s; ratio to the step)",
                ["what", "images/s", "ratio"],
                rows,
            )
        ]
        small = Path(folder) / "epoch"
        write_folder(small, images=args.epoch_images, classes=args.classes, size=args.size, seed=1)
        variants = {"hand-written loop": hand_epoch, "lossforge (LossTask in a Trainer)": lossforge_epoch}
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        steps: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for repeat in range(args.repeats):
            for name in names[repeat % 2 :] + names[: repeat % 2]:  # each variant starts a repeat in turn
                torch.manual_seed(repeat)
                wall, starts = variants[name](small, width=args.width, size=args.size, batch_size=args.batch_size)
                seconds[name].append(wall)
                steps[name].append(steady_step(starts))
        hand = median(seconds["hand-written loop"])
        hand_step = median(steps["hand-written loop"])
        tables.append(
            (
                f"ResNet-18 (width {args.width}) epoch without validation, {args.epoch_images} × 0.9 images in "
                "memory (s)",
                ["variant", "epoch s", "ratio", "steady step s", "ratio"],
                [
                    [
                        name,
                        f"{median(values):.2f}",
                        ratio(median(values), hand),
                        f"{median(steps[name]):.3f}",
                        ratio(median(steps[name]), hand_step),
                    ]
                    for name, values in seconds.items()
                ],
            )
        )
    notes = [
        machine(),
        f"{args.images} PNG files of {args.size}×{args.size} written in {write_seconds:.1f} s; "
        f"batch {args.batch_size}; "
        f"{args.repeats} repeats, medians; os.sched_getaffinity gives {len(os.sched_getaffinity(0))} core(s)",
        quiet,
        load.note(),
    ]
    write_tables("images", tables, out=args.out, notes=notes)


if __name__ == "__main__":
    main()
