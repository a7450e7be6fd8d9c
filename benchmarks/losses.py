"""lossforge's losses vs torch's built-ins: forward + backward on one batch, side by side.

Each row times one lossforge loss and its reference on the same input, alternately (lossforge, reference,
lossforge, …), ``--repeats`` times after a warm-up, and reports the medians and the median of the
pairwise ratios (robust to load drifting during the run). Every call starts from a fresh leaf tensor,
so the backward pass computes the input's gradient.

=========================  ==============================================  ================================
loss (default reduction)   reference                                       input
=========================  ==============================================  ================================
cross_entropy              ``F.cross_entropy``                             logits (N, C), class indices
weighted_cross_entropy     ``F.cross_entropy(weight=w)``                   the same, weights (C,)
focal (γ = 2)              ``F.cross_entropy`` (target: ≤ 1.5×)           the same
bce                        ``F.binary_cross_entropy_with_logits``          logits and {0, 1} labels (N, C)
huber (δ = 1)              ``F.huber_loss``                                prediction and target (N, C)
=========================  ==============================================  ================================

lossforge's ``bce`` and ``huber`` sum over the C outputs of a sample before averaging over samples, torch's
average over all N·C elements: the same work, a different constant. torchvision's ``sigmoid_focal_loss``
(the usual focal reference) is not used: torchvision is not installable in this environment.

``validation ms`` is the time of the input checks alone (dtype, shape, and the label-range / {0, 1}
scans over the target), which the loss runs on every call; on a GPU each of those scans ends in a
host-device sync. The rows "…, targets validated" call the loss with ``check_values=False``, as a loss
module does when ``LossTask`` tells it (``scan_targets = False``) that ``DataSplits`` validated the data
once when it was built: the value scans are skipped (dtype and shape checks stay).

Usage::

    python benchmarks/losses.py                          # N = 65,536, C = 10 and 1000
    python benchmarks/losses.py --sizes 128 65536 --classes 10 100 1000 --repeats 21
    python benchmarks/losses.py --device cuda --sizes 4096 65536 --classes 10 1000   # on a GPU
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from _report import OtherLoad, add_common_arguments, machine, median, synchronize, wait_for_quiet, write_tables
from torch import Tensor
from torch.nn import functional as F

Case = tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor], Callable[[], object] | None, str]


def cases(size: int, classes: int, device: str = "cpu") -> dict[str, tuple[Tensor, Case]]:
    """name → (input, (lossforge loss of x, reference loss of x, the validation alone, reference name))."""
    from lossforge.losses import classification, regression
    from lossforge.losses.classification import inputs

    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(size, classes, generator=generator) * 3).to(device)
    indices = torch.randint(0, classes, (size,), generator=generator).to(device)
    weights = (torch.rand(classes, generator=generator) + 0.5).to(device)
    labels = torch.randint(0, 2, (size, classes), generator=generator).float().to(device)
    targets = (torch.randn(size, classes, generator=generator) * 2).to(device)

    def check_indices() -> object:
        return inputs._check_multiclass("cross_entropy", logits, indices, soft=True)

    def check_labels() -> object:
        return inputs._check_labels("bce", logits, labels, dims=(1, 2))

    return {
        "cross_entropy": (
            logits,
            (
                lambda x: classification.cross_entropy(x, indices),
                lambda x: F.cross_entropy(x, indices),
                check_indices,
                "F.cross_entropy",
            ),
        ),
        "cross_entropy, targets validated": (
            logits,
            (
                lambda x: classification.cross_entropy(x, indices, check_values=False),  # as LossTask has it
                lambda x: F.cross_entropy(x, indices),
                None,
                "F.cross_entropy",
            ),
        ),
        "weighted_cross_entropy": (
            logits,
            (
                lambda x: classification.weighted_cross_entropy(x, indices, weights),
                lambda x: F.cross_entropy(x, indices, weight=weights),
                check_indices,
                "F.cross_entropy(weight=)",
            ),
        ),
        "focal (γ=2)": (
            logits,
            (
                lambda x: classification.focal_loss(x, indices, gamma=2.0),
                lambda x: F.cross_entropy(x, indices),
                check_indices,
                "F.cross_entropy",
            ),
        ),
        "bce": (
            logits,
            (
                lambda x: classification.bce_loss(x, labels),
                lambda x: F.binary_cross_entropy_with_logits(x, labels),
                check_labels,
                "F.binary_cross_entropy_with_logits",
            ),
        ),
        "bce, targets validated": (
            logits,
            (
                lambda x: classification.bce_loss(x, labels, check_values=False),
                lambda x: F.binary_cross_entropy_with_logits(x, labels),
                None,
                "F.binary_cross_entropy_with_logits",
            ),
        ),
        "huber": (
            targets.roll(1, dims=0),
            (
                lambda x: regression.huber_loss(x, targets),
                lambda x: F.huber_loss(x, targets),
                None,
                "F.huber_loss",
            ),
        ),
    }


def forward_backward(loss: Callable[[Tensor], Tensor], data: Tensor) -> float:
    leaf = data.detach().requires_grad_(True)
    synchronize(data.device)
    start = time.perf_counter()
    loss(leaf).backward()
    synchronize(data.device)
    return time.perf_counter() - start


def timed(function: Callable[[], object], data: Tensor) -> float:
    synchronize(data.device)
    start = time.perf_counter()
    function()
    synchronize(data.device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[65_536], help="batch sizes N")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 1000], help="classes / outputs C")
    parser.add_argument("--repeats", type=int, default=11, help="timed calls of each side (medians)")
    add_common_arguments(parser, device="cpu or cuda", threads=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    quiet = wait_for_quiet(args.max_wait)
    rows, started, machine_before, load = [], time.perf_counter(), machine(), OtherLoad()
    for size in args.sizes:
        for classes in args.classes:
            for name, (data, (ours, reference, validation, reference_name)) in cases(
                size, classes, args.device
            ).items():
                forward_backward(ours, data)  # warm-up
                forward_backward(reference, data)
                our_times, reference_times, ratios, check_times = [], [], [], []
                for _ in range(args.repeats):
                    our_times.append(forward_backward(ours, data))
                    reference_times.append(forward_backward(reference, data))
                    ratios.append(our_times[-1] / reference_times[-1])
                    if validation is not None:
                        check_times.append(timed(validation, data))
                ours_ms, reference_ms = 1000 * median(our_times), 1000 * median(reference_times)
                check = f"{1000 * median(check_times):.3f} ({100 * median(check_times) / median(our_times):.0f} %)"
                unchecked = (median(our_times) - median(check_times)) / median(reference_times)
                row = [
                    f"{size:,}",
                    str(classes),
                    name,
                    reference_name,
                    f"{ours_ms:.3f}",
                    f"{reference_ms:.3f}",
                    f"{median(ratios):.2f}×",
                    check if validation is not None else "– (skipped)" if "validated" in name else "– (shapes only)",
                    f"{unchecked:.2f}×" if validation is not None else "–",
                ]
                rows.append(row)
                print(" | ".join(row), flush=True)
    write_tables(
        "losses",
        [
            (
                "Forward + backward, lossforge vs torch",
                [
                    "N",
                    "C",
                    "lossforge loss",
                    "reference",
                    "lossforge ms",
                    "reference ms",
                    "ratio",
                    "validation ms (share)",
                    "ratio without validation",
                ],
                rows,
            )
        ],
        out=args.out,
        notes=[
            f"Machine: {machine_before} ({quiet}); {load.note()}",
            f"{args.repeats} alternating calls per side after a warm-up (medians; ratio = median of pairwise "
            f"ratios); wall time {time.perf_counter() - started:.0f} s",
        ],
    )


if __name__ == "__main__":
    main()
