"""Metric-learning loss + miner, forward + backward: lossforge vs pytorch-metric-learning (PML).

Each configuration (method × implementation × batch size × number of classes) runs in a fresh
subprocess with one torch thread, so peak memory is its own: the child records its peak RSS
(``resource.getrusage``) after setup (imports, data, modules) and again after the measured steps, and
reports the difference. Children run under ``RLIMIT_AS`` (address space after setup + ``--memory-cap-gb``),
so an O(N³) blow-up is reported as "OOM" instead of taking the machine down.

What is compared (both sides use Euclidean distance on L2-normalised embeddings, margin 0.2 for
triplets, and the mean over non-zero terms: PML's default reducer for triplets; for pairs PML averages
positives and negatives separately and adds the means, lossforge's ``pos_neg_mean``, the same work):

============  =========================================  ================================================
method        lossforge                                  PML
============  =========================================  ================================================
semihard      TripletLoss + SemiHardTripletsMiner         TripletMarginLoss + TripletMarginMiner(semihard)
              (one negative per positive pair)            (every negative in the band)
batch_hard    TripletLoss + HardTripletsMiner             TripletMarginLoss + BatchHardMiner
contrastive   ContrastiveLoss(1.0) + HardPairsMiner(1.0)  ContrastiveLoss(0, 1) + PairMarginMiner(0.2, 0.8)
all_triplets  TripletLoss, no miner (O(N²) exact sum)     TripletMarginLoss, no miner (all triplets built)
============  =========================================  ================================================

The miners do not select the same tuples except for batch-hard (the ``tuples`` columns show how many
each returned), so this measures the cost of each library's way of doing the job, not identical math.

A third implementation, ``st``, runs for ``batch_hard`` only: sentence-transformers' ``BatchHardTripletLoss``
formula (one (N, N) Euclidean matrix, masks, hardest positive by ``max`` of the masked matrix, hardest
negative by ``min`` after adding the row maximum to the non-negatives, mean of the hinge), re-implemented
here because sentence-transformers cannot be installed beside this torch (it pulls ``transformers``; the
project pins torch). It is written from the published formula in the library's order of operations
(``distances[distances < 0] = 0``, ``loss[loss < 0] = 0``, float masks), on the same normalised
embeddings and margin; its mean is over all anchors rather than the non-zero ones, one division's
difference.

``--rounds R`` runs every configuration R times, alternating the implementations, and keeps each one's
fastest median: on a shared machine a burst of someone else's work then hits one round, not the ratio.
``--interleave`` instead times all implementations in one child, one step of each in turn, and reports
the medians and the median of the pairwise ratios (lossforge's time / the other's): the robust way to
compare small steps on a busy machine; it has no memory columns (one process holds all three).

Usage::

    python benchmarks/metric_learning.py --sizes 256 1024 --repeats 5
    python benchmarks/metric_learning.py --sizes 4096 --classes 10 --methods semihard --repeats 2
    python benchmarks/metric_learning.py --sizes 128 1024 --classes 10 --methods batch_hard --rounds 5 \
        --append "batch-hard, small and large batches"
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _report import OtherLoad, machine, wait_for_quiet

METHODS = ("semihard", "batch_hard", "contrastive", "all_triplets")
IMPLEMENTATIONS = ("lossforge", "pml", "st")
#: The methods each implementation runs (sentence-transformers' formula exists for batch-hard only).
SUPPORTED = {"lossforge": METHODS, "pml": METHODS, "st": ("batch_hard",)}
RESULTS = Path(__file__).resolve().parent / "results"
MARGIN = 0.2


# -- child: one configuration ----------------------------------------------------------------------


def _build(method: str, implementation: str) -> Any:
    """A step function ``step(embeddings, labels) -> (loss, number of tuples)`` for one configuration."""
    import torch.nn.functional as F

    if implementation == "lossforge":
        from lossforge.losses.metric import ContrastiveLoss, TripletLoss
        from lossforge.mining.miners import HardPairsMiner, HardTripletsMiner, SemiHardTripletsMiner

        # PML normalises inside its distance; lossforge leaves that to the model, so the step does it.
        triplet = TripletLoss(margin=MARGIN, distance="euclidean", reduction="mean_nonzero")
        if method == "contrastive":
            loss = ContrastiveLoss(margin=1.0, distance="euclidean", reduction="mean_nonzero")
            miner: Any = HardPairsMiner(margin=1.0, distance="euclidean")
        else:
            loss = triplet
            miner = {
                "semihard": SemiHardTripletsMiner(margin=MARGIN, distance="euclidean"),
                "batch_hard": HardTripletsMiner(distance="euclidean"),
                "all_triplets": None,
            }[method]

        def step(embeddings: Any, labels: Any) -> tuple[Any, int]:
            normalized = F.normalize(embeddings, dim=1)
            indices = None if miner is None else miner(normalized, labels)
            value = loss(normalized, labels, indices)
            return value, int(loss.last_num_tuples)

        return step

    if implementation == "st":
        import torch

        def step(embeddings: Any, labels: Any) -> tuple[Any, int]:
            normalized = F.normalize(embeddings, dim=1)
            return _sentence_transformers_batch_hard(normalized, labels, torch), len(labels)

        return step

    from pytorch_metric_learning import losses, miners

    if method == "contrastive":
        loss = losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0)
        miner = miners.PairMarginMiner(pos_margin=0.2, neg_margin=0.8)
    else:
        loss = losses.TripletMarginLoss(margin=MARGIN)
        miner = {
            "semihard": miners.TripletMarginMiner(margin=MARGIN, type_of_triplets="semihard"),
            "batch_hard": miners.BatchHardMiner(),
            "all_triplets": None,
        }[method]

    def step(embeddings: Any, labels: Any) -> tuple[Any, int]:
        indices = None if miner is None else miner(embeddings, labels)
        value = loss(embeddings, labels, indices)
        if indices is None:  # PML builds all triplets itself; count them without building them again
            same = (labels[:, None] == labels[None, :]).sum(dim=1)
            return value, int(((same - 1) * (len(labels) - same)).sum())
        return value, len(indices[0]) + (len(indices[2]) if len(indices) == 4 else 0)

    return step


def _sentence_transformers_batch_hard(embeddings: Any, labels: Any, torch: Any) -> Any:
    """sentence-transformers' batch-hard triplet loss, written from its formula and in its order of operations
    (masked assignments included), so that its time is the peer's; see the module docstring."""
    dot = embeddings @ embeddings.T  # (N, N)
    squared_norms = torch.diagonal(dot)
    distances = squared_norms[None, :] - 2.0 * dot + squared_norms[:, None]
    distances[distances < 0] = 0
    zero = distances.eq(0).float()  # sqrt's gradient at 0: shift those entries, then zero them
    distances = torch.sqrt(distances + zero * 1e-16) * (1.0 - zero)
    same = labels[None, :] == labels[:, None]
    positive = (same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)).float()
    hardest_positive = (positive * distances).max(dim=1, keepdim=True).values
    row_max = distances.max(dim=1, keepdim=True).values
    hardest_negative = (distances + row_max * (1.0 - (~same).float())).min(dim=1, keepdim=True).values
    losses = hardest_positive - hardest_negative + MARGIN
    losses[losses < 0] = 0
    return losses.mean()


def _virtual_memory_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_interleaved(config: dict[str, Any]) -> dict[str, Any]:
    """Time several implementations in this process, one step of each in turn: load that comes and goes hits
    them all alike, so the ratios hold even where the absolute times do not (a shared machine)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    num, classes = config["size"], config["classes"]
    embeddings = torch.randn(num, config["dim"], requires_grad=True)
    labels = torch.randperm(num) % classes
    steps = {name: _build(config["method"], name) for name in config["implementations"]}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(config["repeats"] + 1):  # the first round is a warm-up
        for name, step in steps.items():
            embeddings.grad = None
            start = time.perf_counter()
            step(embeddings, labels)[0].backward()
            if repeat:
                times[name].append(time.perf_counter() - start)
    reference = times["lossforge"]
    return {
        "status": "ok",
        "time_ms": {name: 1000 * statistics.median(values) for name, values in times.items()},
        "ratio": {
            name: statistics.median(ours / theirs for ours, theirs in zip(reference, values, strict=True))
            for name, values in times.items()
        },
    }


def run_child(config: dict[str, Any]) -> dict[str, Any]:
    """Measure one configuration in this (fresh) process."""
    import torch

    if config["implementation"] == "interleaved":
        return run_interleaved(config)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    num, classes = config["size"], config["classes"]
    embeddings = torch.randn(num, config["dim"], requires_grad=True)
    labels = torch.randperm(num) % classes
    step = _build(config["method"], config["implementation"])
    baseline = _peak_rss_mb()
    if config["memory_cap_gb"] > 0:
        limit = _virtual_memory_bytes() + int(config["memory_cap_gb"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    times, tuples = [], 0
    try:
        for repeat in range(config["repeats"] + 1):  # the first is a warm-up: its memory counts, not its time
            embeddings.grad = None
            start = time.perf_counter()
            value, tuples = step(embeddings, labels)
            value.backward()
            if repeat:
                times.append(time.perf_counter() - start)
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, MemoryError) or "alloc" in str(error).lower() or "memory" in str(error).lower():
            return {"status": "OOM", "peak_mb": _peak_rss_mb() - baseline}
        raise
    return {
        "status": "ok",
        "time_ms": 1000 * statistics.median(times),
        "peak_mb": _peak_rss_mb() - baseline,
        "tuples": tuples,
    }


# -- parent: run every configuration, print and write the table ------------------------------------


def measure(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", json.dumps(config)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout>{timeout:.0f}s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"crash (rc={done.returncode}: {last[:60]})"}
    return json.loads(lines[-1])


def _cell(result: dict[str, Any], key: str, digits: int = 1) -> str:
    if result.get("status") != "ok":
        return result.get("status", "?")
    value = result[key]
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits if value >= 10 else digits + 1}f}"  # a small batch's step: 0.53 ms, not 0.5


def _ratio(numerator: dict[str, Any], denominator: dict[str, Any], key: str, digits: int = 1) -> str:
    if numerator.get("status") != "ok" or denominator.get("status") != "ok":
        return "–"
    return f"{numerator[key] / max(denominator[key], 1e-9):,.{digits}f}×"


def _best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the fastest median (the least disturbed by other processes); its status otherwise."""
    done = [result for result in results if result.get("status") == "ok"]
    if not done:
        return results[-1] if results else {"status": "skipped"}
    fastest = min(done, key=lambda result: result["time_ms"])
    return {**fastest, "peak_mb": min(result["peak_mb"] for result in done)}


COLUMNS = [
    "N",
    "classes",
    "method",
    "lossforge ms",
    "PML ms",
    "speed-up (PML/lf)",
    "lossforge peak MB",
    "PML peak MB",
    "memory (PML/lf)",
    "lossforge tuples",
    "PML tuples",
    "ST ms",
    "time (lf/ST)",
]


INTERLEAVED_COLUMNS = [
    "N",
    "classes",
    "method",
    "lossforge ms",
    "PML ms",
    "ST ms",
    "time (lf/PML)",
    "time (lf/ST)",
]


def _interleaved_row(size: int, classes: int, method: str, args: argparse.Namespace) -> list[str]:
    implementations = [name for name in IMPLEMENTATIONS if name in args.implementations and method in SUPPORTED[name]]
    if "lossforge" not in implementations:
        implementations.insert(0, "lossforge")
    config = {
        "size": size,
        "classes": classes,
        "method": method,
        "implementation": "interleaved",
        "implementations": implementations,
        "dim": args.dim,
        "repeats": args.repeats,
    }
    result = measure(config, args.timeout)
    if result.get("status") != "ok":
        return [str(size), str(classes), method, result.get("status", "?")] + ["–"] * 4
    times, ratios = result["time_ms"], result["ratio"]

    def cell(name: str) -> str:
        return _cell({"status": "ok", "value": times[name]}, "value", digits=2) if name in times else "–"

    def ratio(name: str) -> str:
        return f"{ratios[name]:.2f}×" if name in ratios else "–"

    return [str(size), str(classes), method, cell("lossforge"), cell("pml"), cell("st"), ratio("pml"), ratio("st")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048, 4096], help="batch sizes N")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100], help="numbers of classes")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension D")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per configuration (median)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per configuration, alternating; the fastest")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="time the implementations in one process, a step of each in turn (ratios; no memory column)",
    )
    parser.add_argument("--append", metavar="TITLE", help="append the table under this title instead of replacing")
    parser.add_argument("--max-wait", type=float, default=60, help="seconds to wait for other processes to calm")
    parser.add_argument("--memory-cap-gb", type=float, default=8.0, help="address space each child may add (0: no cap)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per configuration")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the markdown table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return

    quiet = wait_for_quiet(args.max_wait)
    rows, started, load = [], time.perf_counter(), OtherLoad()
    columns = INTERLEAVED_COLUMNS if args.interleave else COLUMNS
    for size in args.sizes:
        for classes in args.classes:
            for method in args.methods:
                if args.interleave:
                    rows.append(_interleaved_row(size, classes, method, args))
                    print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
                    continue
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name in IMPLEMENTATIONS}
                for _ in range(args.rounds):
                    for implementation in IMPLEMENTATIONS:
                        if implementation not in args.implementations or method not in SUPPORTED[implementation]:
                            continue
                        config = {
                            "size": size,
                            "classes": classes,
                            "method": method,
                            "implementation": implementation,
                            "dim": args.dim,
                            "repeats": args.repeats,
                            "memory_cap_gb": args.memory_cap_gb,
                        }
                        runs[implementation].append(measure(config, args.timeout))
                results = {name: _best(found) if found else {"status": "–"} for name, found in runs.items()}
                ours, theirs, peer = results["lossforge"], results["pml"], results["st"]
                row = [
                    str(size),
                    str(classes),
                    method,
                    _cell(ours, "time_ms"),
                    _cell(theirs, "time_ms"),
                    _ratio(theirs, ours, "time_ms"),
                    _cell(ours, "peak_mb"),
                    _cell(theirs, "peak_mb"),
                    _ratio(theirs, ours, "peak_mb"),
                    _cell(ours, "tuples"),
                    _cell(theirs, "tuples"),
                    _cell(peer, "time_ms"),
                    _ratio(ours, peer, "time_ms", digits=2),
                ]
                rows.append(row)
                print(" | ".join(row), file=sys.stderr, flush=True)

    table = "\n".join(
        ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + ["| " + " | ".join(r) + " |" for r in rows]
    )
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/metric_learning.py " + " ".join(
        f'"{word}"' if " " in word else word for word in (argv if argv is not None else sys.argv[1:])
    )
    text = (
        f"Command: `{command}`  \nTorch threads: 1; D = {args.dim}; repeats = {args.repeats} (median), "
        f"best of {args.rounds} round(s); memory cap {args.memory_cap_gb} GiB per child; wall time "
        f"{time.perf_counter() - started:.0f} s  \n{machine()}  \n{quiet}; {load.note()}\n\n{table}\n"
    )
    target = args.out / "metric_learning.md"
    if args.append:
        previous = target.read_text() if target.exists() else ""
        target.write_text(f"{previous.rstrip()}\n\n## {args.append}\n\n{text}")
    else:
        target.write_text(text)


if __name__ == "__main__":
    main()
