"""The new metric-learning losses vs pytorch-metric-learning (PML): forward + backward, time and peak memory.

Every loss that lossforge registers *and* PML implements, at batch sizes 256 and 1024 and embedding
dimension 128 (the issue's target: ≤ 1.0× PML's time and memory). Names resolve through lossforge's
registry; a loss not registered (yet) is skipped with a printed reason, as is a PML configuration that
would need more memory than ``--pml-memory-cap-gb``.

==================  =========================================  ===========================================
lossforge name      PML                                        same math?
==================  =========================================  ===========================================
supcon              ``SupConLoss(temperature=0.1)``            yes (``reduction="mean_nonzero"``)
circle              ``CircleLoss(m=0.4, gamma=80)``            yes (``reduction="mean_nonzero"``)
lifted_structure    ``LiftedStructureLoss(neg_margin=1)``      yes on normalised embeddings (the step
                                                               normalises; PML's distance does)
arcface             ``ArcFaceLoss(C, D)``                      yes (defaults; PML's margin in degrees)
cosface             ``CosFaceLoss(C, D)``                      yes (defaults)
normalized_softmax  ``NormalizedSoftmaxLoss(C, D)``            yes (defaults)
proxy_nca           ``ProxyNCALoss(C, D)``                     yes (defaults)
proxy_anchor        ``ProxyAnchorLoss(C, D)``                  yes (defaults)
==================  =========================================  ===========================================

The proxy losses get ``prepare(targets=..., num_classes=C, embedding_dim=D)`` first; both sides compute
the gradients of the embeddings and of their own proxies / weights (reset before every call).

Time: both sides are called alternately (lossforge, PML, lossforge, …) ``--repeats`` times after a
two-call warm-up (fewer, at least 3, where a row would take over ``--max-seconds``: PML's lifted
structure takes seconds a call), on a fresh leaf tensor each call, in ``--rounds`` passes over all the
cases (a stretch of someone else's load then hits a share of every case, not one case whole); the table
gives the medians and the median of the pairwise ratios, over all rounds' calls.

Memory: the peak of torch's CPU allocator during one forward + backward, read from the profiler's
allocation events (``profile_memory=True``: every tensor allocation and free of c10's CPU allocator, with
the running total it reports), counted from the call's start — the bytes the step itself needs beyond its
inputs. ``tracemalloc`` would be dishonest here: it sees Python's allocator, not torch's.

Usage::

    python benchmarks/zoo_speed.py --threads 1                      # N = 256 and 1024, D = 128, C = 100
    python benchmarks/zoo_speed.py --threads 1 --sizes 256 --losses supcon circle --repeats 51 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from _report import OtherLoad, add_common_arguments, machine, median, wait_for_quiet, write_tables
from torch import Tensor
from torch.nn import functional as F


def _peers() -> dict[str, tuple[str, Callable[[int, int], Any], dict[str, Any], bool]]:
    from pytorch_metric_learning import losses

    nonzero = {"reduction": "mean_nonzero"}  # PML's AvgNonZeroReducer, its default for these three
    return {
        "supcon": ("SupConLoss(temperature=0.1)", lambda c, d: losses.SupConLoss(temperature=0.1), nonzero, False),
        "circle": ("CircleLoss(m=0.4, gamma=80)", lambda c, d: losses.CircleLoss(m=0.4, gamma=80), nonzero, False),
        "lifted_structure": (
            "LiftedStructureLoss(neg_margin=1, pos_margin=0)",
            lambda c, d: losses.LiftedStructureLoss(neg_margin=1, pos_margin=0),
            nonzero,
            True,
        ),
        "arcface": ("ArcFaceLoss(C, D)", lambda c, d: losses.ArcFaceLoss(c, d), {}, False),
        "cosface": ("CosFaceLoss(C, D)", lambda c, d: losses.CosFaceLoss(c, d), {}, False),
        "normalized_softmax": (
            "NormalizedSoftmaxLoss(C, D)",
            lambda c, d: losses.NormalizedSoftmaxLoss(c, d),
            {},
            False,
        ),
        "proxy_nca": ("ProxyNCALoss(C, D)", lambda c, d: losses.ProxyNCALoss(c, d), {}, False),
        "proxy_anchor": ("ProxyAnchorLoss(C, D)", lambda c, d: losses.ProxyAnchorLoss(c, d), {}, False),
    }


def _pml_lifted_bytes(labels: Tensor) -> int:
    """PML's lifted structure builds (positive pairs × negative pairs) masks and losses: ~4 such arrays."""
    same = (labels[:, None] == labels[None, :]).sum().item() - len(labels)
    return 4 * 4 * int(same) * (len(labels) ** 2 - int(same) - len(labels))


def _share_proxies(ours: Any, theirs: Any) -> None:
    """Start PML from lossforge's proxies (W is stored transposed in PML's ArcFace, CosFace, softmax)."""
    proxies = getattr(ours, "proxies", None)
    if proxies is None:
        return
    with torch.no_grad():
        if hasattr(theirs, "W"):
            theirs.W.copy_(proxies.detach().T)
        elif hasattr(theirs, "proxies"):
            theirs.proxies.copy_(proxies.detach())


def _ratio(value: float) -> str:
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.1e}×"  # PML's lifted structure: 1/300 of the time


def forward_backward(step: Callable[[Tensor], Tensor], module: Any, data: Tensor) -> float:
    for parameter in module.parameters():
        parameter.grad = None
    leaf = data.detach().requires_grad_(True)
    start = time.perf_counter()
    step(leaf).backward()
    return time.perf_counter() - start


def peak_bytes(step: Callable[[Tensor], Tensor], module: Any, data: Tensor) -> int:
    """Peak bytes torch's CPU allocator held during one forward + backward, beyond what existed before."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    for parameter in module.parameters():
        parameter.grad = None
    leaf = data.detach().requires_grad_(True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(leaf).backward()
    allocations: list[tuple[int, int, int]] = []
    nodes = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            allocations.append((node.start_time_ns, node.extra_fields.alloc_size, node.extra_fields.total_allocated))
    if not allocations:
        return 0
    allocations.sort()
    _, first_size, first_total = allocations[0]
    return max(total for _, _, total in allocations) - (first_total - first_size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="batch sizes N")
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension D")
    parser.add_argument("--classes", type=int, default=100, help="classes C (labels balanced, shuffled)")
    parser.add_argument("--losses", nargs="+", help="lossforge names (default: every one PML also has)")
    parser.add_argument("--repeats", type=int, default=21, help="timed calls of each side per round (medians)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over all cases; their calls are pooled")
    parser.add_argument(
        "--max-seconds", type=float, default=60, help="fewer repeats (at least 3) where a row would take longer"
    )
    parser.add_argument("--pml-memory-cap-gb", type=float, default=4.0, help="skip PML configurations needing more")
    add_common_arguments(parser, threads=True)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from lossforge import build_loss, list_losses
    from lossforge.contract import prepare_loss

    peers, registered = _peers(), set(list_losses())
    names = args.losses or list(peers)
    quiet = wait_for_quiet(args.max_wait)
    rows, skipped, started, machine_before, load = [], [], time.perf_counter(), machine(), OtherLoad()
    for name in names:
        if name not in peers:
            skipped.append(f"`{name}`: PML has no counterpart in this benchmark")
        elif name not in registered:
            skipped.append(f"`{name}`: not registered in lossforge (yet); `lossforge list` shows what is")
    for line in skipped:
        print("skipped:", line, flush=True)
    cases: list[dict[str, Any]] = []
    for size in args.sizes:
        generator = torch.Generator().manual_seed(size)
        embeddings = torch.randn(size, args.dim, generator=generator)
        labels = (torch.arange(size) % args.classes)[torch.randperm(size, generator=generator)]
        for name in names:
            if name not in peers or name not in registered:
                continue
            pml_name, pml_factory, options, normalise = peers[name]
            ours = build_loss(name, **options)
            prepare_loss(ours, targets=labels, num_classes=args.classes, embedding_dim=args.dim)
            theirs = pml_factory(args.classes, args.dim)
            _share_proxies(ours, theirs)

            def our_step(x: Tensor, loss: Any = ours, normalise: bool = normalise, labels: Tensor = labels) -> Tensor:
                return loss(F.normalize(x, dim=1) if normalise else x, labels)

            def their_step(x: Tensor, loss: Any = theirs, labels: Tensor = labels) -> Tensor:
                return loss(x, labels)

            pml_runs = name != "lifted_structure" or _pml_lifted_bytes(labels) < args.pml_memory_cap_gb * 2**30
            sides = [(our_step, ours), (their_step, theirs)] if pml_runs else [(our_step, ours)]
            cases.append(
                {"size": size, "name": name, "pml": pml_name, "labels": labels, "data": embeddings, "sides": sides}
                | {"times": [[] for _ in sides], "ratios": [], "repeats": 0}
            )
    # Every case once per round, so a stretch of someone else's load hits one round's share of each.
    for _ in range(args.rounds):
        for case in cases:
            warm_up = sum(forward_backward(step, module, case["data"]) for step, module in case["sides"])
            for step, module in case["sides"]:
                forward_backward(step, module, case["data"])
            repeats = min(args.repeats, max(3, int(args.max_seconds / args.rounds / warm_up)))
            case["repeats"] += repeats
            for _ in range(repeats):
                for times, (step, module) in zip(case["times"], case["sides"], strict=True):
                    times.append(forward_backward(step, module, case["data"]))
                if len(case["sides"]) == 2:
                    case["ratios"].append(case["times"][0][-1] / case["times"][1][-1])
    for case in cases:
        pml_runs = len(case["sides"]) == 2
        peaks = [peak_bytes(step, module, case["data"]) / 2**20 for step, module in case["sides"]]
        our_peak, their_peak = peaks[0], peaks[1] if pml_runs else float("nan")
        time_ratio = median(case["ratios"])
        memory_ratio = our_peak / their_peak if pml_runs and their_peak > 0 else float("nan")
        met = "yes" if time_ratio <= 1.0 and memory_ratio <= 1.0 else "no" if pml_runs else "–"
        needed = "" if pml_runs else f"skipped: needs ~{_pml_lifted_bytes(case['labels']) / 2**30:.0f} GiB"
        row = [
            f"{case['size']:,}",
            case["name"],
            case["pml"],
            f"{1000 * median(case['times'][0]):.2f}",
            f"{1000 * median(case['times'][1]):.2f}" if pml_runs else needed,
            _ratio(time_ratio) if pml_runs else "–",
            f"{our_peak:.1f}",
            f"{their_peak:.1f}" if pml_runs else "–",
            _ratio(memory_ratio) if pml_runs else "–",
            met,
            str(case["repeats"]),
        ]
        rows.append(row)
        print(" | ".join(row), flush=True)
    write_tables(
        "zoo_speed",
        [
            (
                "Forward + backward, lossforge vs PML",
                [
                    "N",
                    "lossforge loss",
                    "PML",
                    "lossforge ms",
                    "PML ms",
                    "time (lf/PML)",
                    "lossforge peak MB",
                    "PML peak MB",
                    "memory (lf/PML)",
                    "≤ 1.0× both?",
                    "repeats",
                ],
                rows,
            )
        ],
        out=args.out,
        notes=[
            f"Machine: {machine_before} ({quiet}); {load.note()}",
            f"D = {args.dim}, C = {args.classes}; {args.rounds} round(s) of {args.repeats} alternating calls per "
            f"side after a warm-up (medians; time ratio = median of pairwise ratios); peak memory: torch's CPU "
            f"allocator, from the profiler's allocation events; wall time {time.perf_counter() - started:.0f} s",
            *[f"Skipped {line}" for line in skipped],
        ],
    )


if __name__ == "__main__":
    main()
