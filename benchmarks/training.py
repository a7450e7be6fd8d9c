"""An epoch of the lecture's MLP on MNIST-sized data: lossforge's training path vs a hand-written loop.

Data: 60,000 × 784 random float32 features, 10 classes (``--samples``), a 10,000-sample validation split
(``--val-samples``), batch 128. Model: the lecture's 784-512-512-10 tanh MLP (669,706 parameters), Adam
(lr 1e-3), softmax cross-entropy. Every variant starts from the same initial weights.

Variants, run interleaved (one repeat of each, then the next repeat, each repeat starting with the next
variant) in this one process:

* ``hand``: a plain PyTorch loop — ``randperm``, batched slicing of the in-memory tensors, forward,
  ``F.cross_entropy``, backward, ``Adam.step`` — then the validation split (loss + accuracy, no grad).
* ``lightning_bare``: the same math as a minimal ``LightningModule`` in a ``Trainer`` with no logger, no
  callbacks, no checkpointing, no validation: the floor Lightning itself sets.
* ``lossforge``: lossforge's training path, built the way ``lossforge.training.run.train`` builds it —
  ``LossTask`` with the registered ``cross_entropy`` loss, ``make_loader`` (batched ``__getitems__``),
  a ``Trainer`` with ``conf/trainer/default.yaml`` (progress bar off, ``max_epochs=1``), the
  ``EpochMetricsToMlflow`` callback logging to a temporary SQLite MLflow store, the NaN guard, the RNG
  state for resume, ``EpochCheckpoints`` (best + last, atomic) and ``SaveOnInterrupt``; validation with its
  metrics (accuracy, F1, ECE, NLL).
* ``lossforge_per_sample``: the same with ``make_loader(per_sample=True)`` (``TensorDataset`` + default
  collation), to show what the batched loader saves.
* ``lossforge_manual``: the same with manual optimization in the training step (a subclass here), the
  alternative to Lightning's automatic loop that was measured and not adopted.

Reported per variant: the epoch's wall time (Trainer construction + ``fit``, or the whole hand loop), its
split into set-up (before the first step), steps, and after the last step (validation, checkpoints,
MLflow, teardown), and the steady-state step — the median interval between consecutive training-step
starts, which includes data loading and every hook, and is robust to short bursts of load from other
processes on a shared machine. Ratios are against ``hand``.

A second table puts throughput against the hardware: samples/s × 6 × 669,706 FLOP (forward + backward)
against the FLOP/s of ``torch.matmul`` on two square float32 matrices measured between the repeats.
A third times the loaders alone: one pass over the training split, batched vs per-sample.

Usage::

    python benchmarks/training.py                    # 6 repeats
    python benchmarks/training.py --repeats 11 --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _report import OtherLoad, add_common_arguments, machine, median, ratio, synchronize, wait_for_quiet, write_tables
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = 669_706  # 784·512 + 512 + 512·512 + 512 + 512·10 + 10
FLOP_PER_SAMPLE = 6 * PARAMETERS  # forward 2·P, backward 4·P multiply-adds counted as 2 FLOP
DEVICE = torch.device("cpu")  # --device; every variant trains there


class Timings:
    """When the run started, when each training step started, when the last one ended, and the wall time."""

    def __init__(self) -> None:
        self.start = 0.0
        self.step_starts: list[float] = []
        self.last_step_end = 0.0
        self.wall = 0.0

    @property
    def phases(self) -> tuple[float, float, float]:
        """Seconds before the first step (set-up), of the steps, and after the last step (validation,
        checkpoints, MLflow, teardown)."""
        first, last = self.step_starts[0] - self.start, self.last_step_end - self.start
        return first, last - first, self.wall - last

    @property
    def step(self) -> float:
        """Median interval between consecutive step starts (data loading and hooks included)."""
        starts = self.step_starts
        return median([later - earlier for earlier, later in itertools.pairwise(starts)])


def build_model(seed: int = 0) -> torch.nn.Module:
    from lossforge.models import MLP

    torch.manual_seed(seed)
    return MLP(input_shape=(784,), output_dim=10, hidden=(512, 512), activation="tanh")


# -- the hand-written loop -----------------------------------------------------------------------------


def hand_epoch(data: dict[str, Any], batch_size: int, *, copy_batches: bool = False) -> Timings:
    """``copy_batches`` (GPU): keep the data in host memory and copy each batch to the device, as a
    ``DataLoader`` does, instead of holding it on the device."""
    timings = Timings()
    model = build_model().to(DEVICE)
    on_device = DEVICE if not copy_batches else torch.device("cpu")
    features, labels = data["train"].features.to(on_device), data["train"].targets.to(on_device)
    val_features, val_labels = data["val"].features.to(DEVICE), data["val"].targets.to(DEVICE)
    synchronize(DEVICE)
    timings.start = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(labels), device=on_device)
    for first in range(0, len(labels), batch_size):
        timings.step_starts.append(time.perf_counter())
        batch = order[first : first + batch_size]
        batch_features, batch_labels = features[batch].to(DEVICE), labels[batch].to(DEVICE)
        loss = F.cross_entropy(model(batch_features), batch_labels)  # (B, 10) logits
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(DEVICE)
    timings.last_step_end = time.perf_counter()
    with torch.no_grad():
        total, correct = torch.zeros((), device=DEVICE), torch.zeros((), dtype=torch.long, device=DEVICE)
        for first in range(0, len(val_labels), 1024):
            logits = model(val_features[first : first + 1024])
            total += F.cross_entropy(logits, val_labels[first : first + 1024], reduction="sum")
            correct += (logits.argmax(dim=1) == val_labels[first : first + 1024]).sum()
        _ = (total / len(val_labels)).item(), (correct / len(val_labels)).item()
    timings.wall = time.perf_counter() - timings.start
    return timings


# -- Lightning -----------------------------------------------------------------------------------------


def _step_clock(timings: Timings) -> Any:
    import lightning as L

    class StepClock(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_index: int) -> None:
            timings.step_starts.append(time.perf_counter())

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_index: int) -> None:
            if batch_index + 1 == trainer.num_training_batches:  # the GPU's queued steps count as steps
                synchronize(DEVICE)
            timings.last_step_end = time.perf_counter()

    return StepClock()


def lightning_bare_epoch(data: dict[str, Any], batch_size: int) -> Timings:
    import lightning as L

    from lossforge.data.loaders import make_loader

    class Bare(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = build_model()  # Lightning moves it to the device

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_index: int) -> torch.Tensor:
            features, labels = batch
            return F.cross_entropy(self.model(features), labels)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    timings = Timings()
    module = Bare()
    loader = make_loader(data["train"], batch_size=batch_size, shuffle=True, seed=0)
    synchronize(DEVICE)
    timings.start = time.perf_counter()
    trainer = L.Trainer(
        max_epochs=1,
        accelerator=DEVICE.type if DEVICE.type == "cpu" else "gpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_step_clock(timings)],
    )
    trainer.fit(module, loader)
    timings.wall = time.perf_counter() - timings.start
    return timings


def manual_task() -> type:
    """``LossTask`` with manual optimization (``zero_grad`` / ``manual_backward`` / ``step`` in the training
    step), which skips Lightning's closure-based optimizer loop; measured, not adopted (benchmarks/README.md)."""
    from lossforge.training.module import LossTask

    class Manual(LossTask):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_index: int) -> Any:
            loss = super().training_step(batch, batch_index)
            optimizer = self.optimizers()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
            return loss

    return Manual


def lossforge_epoch(
    data: dict[str, Any],
    batch_size: int,
    *,
    per_sample: bool,
    store: Path,
    task_class: type | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> Timings:
    """The pieces ``lossforge.training.run.train`` builds, in its order, for one epoch."""
    import lightning as L
    from omegaconf import OmegaConf

    from lossforge.contract import Task
    from lossforge.data.loaders import make_loader
    from lossforge.registry import LOSSES
    from lossforge.tracking import mlflow_run
    from lossforge.tracking.callback import EpochMetricsToMlflow
    from lossforge.training.checkpoints import EpochCheckpoints, SaveOnInterrupt
    from lossforge.training.guards import FiniteLossGuard
    from lossforge.training.module import LossTask
    from lossforge.training.optim import OptimizerConfig
    from lossforge.training.resume import RandomStateInCheckpoints

    timings = Timings()
    module = (task_class or LossTask)(
        model=build_model(),
        loss=LOSSES.build("cross_entropy"),
        task=Task.MULTICLASS,
        num_outputs=10,
        class_names=tuple(str(digit) for digit in range(10)),
        optimizer=OptimizerConfig(name="adam", lr=1e-3),
    )
    loaders = {
        "train": make_loader(data["train"], batch_size=batch_size, shuffle=True, seed=0, per_sample=per_sample),
        "val": make_loader(data["val"], batch_size=1024, shuffle=False, seed=0, per_sample=per_sample),
    }
    trainer_config = OmegaConf.load(ROOT / "conf" / "trainer" / "default.yaml")
    trainer_config.max_epochs, trainer_config.enable_progress_bar = 1, False
    if DEVICE.type == "cuda":  # conf/trainer/gpu.yaml
        trainer_config.accelerator, trainer_config.deterministic = "gpu", False
    output_dir = Path(tempfile.mkdtemp(dir=store))
    with mlflow_run(
        tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
        experiment="benchmark",
        run_name="training",
        tags={},
        artifact_location=(store / "mlartifacts").as_uri(),
    ) as run:
        synchronize(DEVICE)
        timings.start = time.perf_counter()
        callbacks = [  # what lossforge.training.run.fit_and_test puts on the trainer
            EpochMetricsToMlflow(run),
            FiniteLossGuard(loss_name="cross_entropy", learning_rate=1e-3),
            RandomStateInCheckpoints(),
            SaveOnInterrupt(output_dir / "checkpoints"),
            EpochCheckpoints(output_dir / "checkpoints", monitor="val/f1_macro", higher_is_better=True),
            _step_clock(timings),
            *extra_callbacks,
        ]
        trainer = L.Trainer(
            **OmegaConf.to_container(trainer_config, resolve=True),  # type: ignore[arg-type]
            logger=False,
            default_root_dir=output_dir,
            callbacks=callbacks,
        )
        trainer.fit(module, loaders["train"], loaders["val"], weights_only=True)
        timings.wall = time.perf_counter() - timings.start
    torch.use_deterministic_algorithms(False)  # the trainer config turned it on; keep the other variants as they are
    return timings


# -- the hardware, and the loaders alone ---------------------------------------------------------------


def matmul_flops(size: int, repeats: int = 3) -> float:
    """FLOP/s of ``torch.matmul`` on two ``size`` × ``size`` float32 matrices (median of ``repeats``)."""
    left, right = torch.randn(size, size, device=DEVICE), torch.randn(size, size, device=DEVICE)
    torch.matmul(left, right)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(DEVICE)
        start = time.perf_counter()
        torch.matmul(left, right)
        synchronize(DEVICE)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / median(times)


def loader_pass(data: dict[str, Any], batch_size: int, *, per_sample: bool) -> float:
    from lossforge.data.loaders import make_loader

    loader = make_loader(data["train"], batch_size=batch_size, shuffle=True, seed=0, per_sample=per_sample)
    start = time.perf_counter()
    for features, labels in loader:
        assert features.shape[0] == labels.shape[0]
    return time.perf_counter() - start


# -- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60_000, help="training samples (MNIST: 60,000)")
    parser.add_argument("--val-samples", type=int, default=10_000, help="validation samples")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=6, help="epochs per variant (medians are reported)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the square matrices")
    add_common_arguments(parser, device="cpu, or cuda: every variant trains on the GPU", threads=True)
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # Lightning's advice on num_workers, which in-memory tensors do not need
    import lightning  # noqa: F401  (it sets its loggers' levels on import; quiet them after that)

    for name in ("lightning.pytorch", "lightning.fabric", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from lossforge.data.base import Split

    generator = torch.Generator().manual_seed(0)
    data = {
        split: Split(torch.randn(size, 784, generator=generator), torch.randint(0, 10, (size,), generator=generator))
        for split, size in (("train", args.samples), ("val", args.val_samples))
    }
    store = Path(tempfile.mkdtemp(prefix="lossforge-bench-"))
    variants: dict[str, tuple[str, Callable[[], Timings]]] = {
        "hand": ("hand-written loop: randperm + slicing, then validation", lambda: hand_epoch(data, args.batch_size)),
        **(
            {
                "hand_copy": (
                    "the same with the data in host memory, each batch copied to the GPU",
                    lambda: hand_epoch(data, args.batch_size, copy_batches=True),
                )
            }
            if DEVICE.type == "cuda"
            else {}
        ),
        "lightning_bare": (
            "Lightning, minimal module: no logging, callbacks or validation",
            lambda: lightning_bare_epoch(data, args.batch_size),
        ),
        "lossforge": (
            "lossforge: LossTask, Trainer as train() sets it up, MLflow callback, checkpoints, validation",
            lambda: lossforge_epoch(data, args.batch_size, per_sample=False, store=store),
        ),
        "lossforge_per_sample": (
            "the same with the per-sample loader (TensorDataset + default collation)",
            lambda: lossforge_epoch(data, args.batch_size, per_sample=True, store=store),
        ),
    }
    manual = manual_task()
    variants["lossforge_manual"] = (
        "lossforge with manual optimization in LossTask (skips Lightning's optimizer closure)",
        lambda: lossforge_epoch(data, args.batch_size, per_sample=False, store=store, task_class=manual),
    )
    quiet = wait_for_quiet(args.max_wait)
    machine_before, load = machine(), OtherLoad()
    started = time.perf_counter()
    for _, variant in variants.values():  # warm-up: imports, allocator, the SQLite store's tables
        variant()
    timings: dict[str, list[Timings]] = {name: [] for name in variants}
    loaders: dict[str, list[float]] = {"batched": [], "per_sample": []}
    flops: list[float] = []
    names = list(variants)
    for repeat in range(args.repeats):
        shift = repeat % len(names)  # each repeat starts with another variant: no variant always runs first
        for name in names[shift:] + names[:shift]:
            timings[name].append(variants[name][1]())
        flops.append(matmul_flops(args.matmul_size))
        for kind in loaders:
            loaders[kind].append(loader_pass(data, args.batch_size, per_sample=kind == "per_sample"))
        print(
            f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(f"{n} {t[-1].wall:.2f} s" for n, t in timings.items())
        )

    def wall(name: str) -> float:
        return median([run.wall for run in timings[name]])

    def step(name: str) -> float:
        return median([run.step for run in timings[name]])

    def phase(name: str, index: int) -> float:
        return median([run.phases[index] for run in timings[name]])

    epoch_rows = [
        [
            name,
            description,
            f"{wall(name):.2f}",
            f"{min(run.wall for run in timings[name]):.2f}",
            ratio(wall(name), wall("hand")),
            f"{1000 * step(name):.2f}",
            ratio(step(name), step("hand")),
            " / ".join(f"{phase(name, index):.2f}" for index in range(3)),
        ]
        for name, (description, _) in variants.items()
    ]
    peak = median(flops)
    throughput_rows = [["torch.matmul", f"{args.matmul_size}² float32", "–", f"{peak / 1e9:.1f}", "100 %"]]
    for name in ("hand", "lossforge", "lossforge_manual"):
        if name not in variants:
            continue
        for basis, seconds_per_sample in (
            ("steady-state step", step(name) / args.batch_size),
            ("whole epoch incl. validation", wall(name) / args.samples),
        ):
            achieved = FLOP_PER_SAMPLE / seconds_per_sample
            throughput_rows.append(
                [
                    name,
                    basis,
                    f"{1 / seconds_per_sample:,.0f}",
                    f"{achieved / 1e9:.1f}",
                    f"{100 * achieved / peak:.0f} %",
                ]
            )
    loader_rows = [
        [kind, f"{1000 * median(times):.0f}", ratio(median(times), median(loaders["batched"]))]
        for kind, times in loaders.items()
    ]
    write_tables(
        "training",
        [
            (
                "Framework overhead: one epoch",
                [
                    "variant",
                    "what",
                    "epoch s (median)",
                    "epoch s (min)",
                    "epoch vs hand",
                    "step ms (median)",
                    "step vs hand",
                    "set-up / steps / after s",
                ],
                epoch_rows,
            ),
            (
                "Throughput vs the hardware",
                ["what", "basis", "samples/s", "GFLOP/s", "of matmul peak"],
                throughput_rows,
            ),
            (
                "Data loading alone: one pass over the training split",
                ["loader", "ms (median)", "vs batched"],
                loader_rows,
            ),
        ],
        out=args.out,
        notes=[
            f"Machine: {machine_before} ({quiet}); {load.note()}",
            f"{args.samples:,} × 784 train, {args.val_samples:,} val, batch {args.batch_size}, {args.repeats} "
            f"interleaved repeats (order rotated) after one warm-up; wall time {time.perf_counter() - started:.0f} s",
        ],
    )


if __name__ == "__main__":
    main()
