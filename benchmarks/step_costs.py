"""What one piece of lossforge's training step costs, by alternating it on and off inside one epoch.

Epoch-level comparisons (``training.py``) drift between runs on a shared machine; a small per-step
cost is measured more reliably by switching one thing on for two steps and off for two steps, over and
over, within the same epoch — both sides then see the same load — and comparing the median step
intervals (next step's start minus this one's) of each side.

The training path is ``training.py``'s ``lossforge`` variant (same data, model, Trainer settings and
callbacks). What is switched:

* ``scans``: the loss scanning its targets' values every batch (``LossTask(scan_targets=True)``) vs
  trusting the data validated once (the default: the loss's ``scan_targets`` is set ``False``);
* ``loss``: lossforge's ``cross_entropy`` (input checks included) vs ``F.cross_entropy``;
* ``callbacks``: the MLflow, checkpoint and interrupt callbacks present vs removed for the step;
* ``deterministic``: ``torch.use_deterministic_algorithms`` on vs off (``conf/trainer/default.yaml``
  turns it on).

Usage::

    python benchmarks/step_costs.py                  # 3 epochs per switch
    python benchmarks/step_costs.py --epochs 5 --samples 30000
"""

from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import training
from _report import OtherLoad, add_common_arguments, machine, median, wait_for_quiet, write_tables

SWITCHES = ("scans", "loss", "callbacks", "deterministic")


def switched_epoch(switch: str, data: dict[str, Any], batch_size: int, store: Path) -> tuple[float, float]:
    """Median step interval with ``switch`` on, and with it off, over one epoch."""
    import lightning as L

    from lossforge.registry import LOSSES

    ours, plain = LOSSES.build("cross_entropy"), torch.nn.CrossEntropyLoss()
    starts: list[float] = []
    modes: list[bool] = []

    class Switch(L.Callback):
        saved: list[Any] | None = None

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_index: int) -> None:
            starts.append(time.perf_counter())
            on = batch_index // 2 % 2 == 0
            modes.append(on)
            if switch == "scans":
                module.loss.scan_targets = on
            elif switch == "loss":
                module.loss = ours if on else plain
            elif switch == "deterministic":
                torch.use_deterministic_algorithms(on)
            elif switch == "callbacks":
                self.saved = self.saved or [c for c in trainer.callbacks if c is not self]
                # a new list: Lightning is iterating over the current one (mutating it ran hooks twice)
                trainer.callbacks = [*self.saved, self] if on else [self]

    training.lossforge_epoch(data, batch_size, per_sample=False, store=store, extra_callbacks=[Switch()])
    torch.use_deterministic_algorithms(False)
    intervals: dict[bool, list[float]] = {True: [], False: []}
    for (earlier, later), on in zip(itertools.pairwise(starts), modes, strict=False):
        intervals[on].append(later - earlier)
    return median(intervals[True]), median(intervals[False])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60_000, help="training samples")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per switch (medians)")
    add_common_arguments(parser, device="cpu, or cuda (the deterministic switch is skipped there)")
    args = parser.parse_args(argv)
    training.DEVICE = torch.device(args.device)
    warnings.filterwarnings("ignore")
    import lightning  # noqa: F401  (it sets its loggers' levels on import; quiet them after that)

    for name in ("lightning.pytorch", "lightning.fabric", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from lossforge.data.base import Split

    generator = torch.Generator().manual_seed(0)
    data = {
        split: Split(torch.randn(size, 784, generator=generator), torch.randint(0, 10, (size,), generator=generator))
        for split, size in (("train", args.samples), ("val", 1024))
    }
    store = Path(tempfile.mkdtemp(prefix="lossforge-bench-"))
    switches = [s for s in SWITCHES if s != "deterministic" or training.DEVICE.type == "cpu"]
    quiet = wait_for_quiet(args.max_wait)
    machine_before, started, load = machine(), time.perf_counter(), OtherLoad()
    rows = []
    for switch in switches:
        results = [switched_epoch(switch, data, args.batch_size, store) for _ in range(args.epochs)]
        on, off = median([r[0] for r in results]), median([r[1] for r in results])
        rows.append([switch, f"{1000 * on:.3f}", f"{1000 * off:.3f}", f"{1000 * (on - off):+.3f}", f"{on / off:.3f}×"])
        print(" | ".join(rows[-1]), flush=True)
    write_tables(
        "step_costs",
        [
            (
                "One step with the piece on vs off, ms (alternating steps)",
                ["switch", "on", "off", "on − off", "ratio"],
                rows,
            )
        ],
        out=args.out,
        notes=[
            f"Machine: {machine_before} ({quiet}); {load.note()}",
            f"{args.samples:,} × 784, batch {args.batch_size}; {args.epochs} epochs per switch (median of their "
            f"medians); wall time {time.perf_counter() - started:.0f} s",
        ],
    )


if __name__ == "__main__":
    main()
