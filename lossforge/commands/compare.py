"""`lossforge compare [RUN_ID]`: a sweep's runs read back from MLflow, with a verdict on every difference —
the arguments parsed here, the comparison made by [lossforge.api.compare][] and rendered
in the format asked for."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from lossforge.api import compare
from lossforge.evaluation.compare.across import compare_across
from lossforge.evaluation.compare.verdicts import ComparisonError
from lossforge.evaluation.statistics.metrics import Direction


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossforge compare",
        description="A sweep's runs read back from MLflow, with a verdict on every difference.",
    )
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the sweep's parent run (default: the latest)")
    parser.add_argument("--sweep", help=argparse.SUPPRESS)  # the flag RUN_ID replaced; still accepted
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--experiment", default="lossforge", help="MLflow experiment name (default: lossforge)")
    parser.add_argument("--metrics", help="comma-separated metrics (default: every comparable test/* metric)")
    parser.add_argument(
        "--mean-over",
        metavar="PARAMS",
        help="comma-separated parameters to pool over besides the seed, which is always pooled (e.g. "
        "dataset.split_seed); 'none': every run its own row",
    )
    parser.add_argument(
        "--baseline",
        metavar="NAME",
        help="the group the others are judged against: a loss name or a full group label; 'none' for no "
        "verdicts (default: the task's baseline where one group trained it: l2 for regression, cross_entropy "
        "for multiclass, bce for binary and multilabel, contrastive+semihard_triplets for metric learning)",
    )
    parser.add_argument(
        "--higher-is-better", metavar="METRICS", default="", help="comma-separated metrics where higher is better"
    )
    parser.add_argument(
        "--lower-is-better", metavar="METRICS", default="", help="comma-separated metrics where lower is better"
    )
    parser.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "json"),
        default="table",
        help="what to print: the tables with a header (default), the markdown document, or the rows as CSV/JSON",
    )
    parser.add_argument("--output", default="outputs/compare.png", help="where to write the PNG plot")
    parser.add_argument(
        "--across",
        metavar="RUN_IDS",
        help="comma-separated sweep/comparison runs, one per dataset: rank the losses on each and run a "
        "Friedman test with the Nemenyi critical-difference diagram (needs --metrics with one metric)",
    )
    parser.add_argument(
        "--log",
        action="store_true",
        help="write the tables, the plot and each group's mean and CI onto the sweep's MLflow run (by default "
        "compare only reads)",
    )
    parser.add_argument("--no-log", action="store_true", help=argparse.SUPPRESS)  # the old opt-out: the default now
    return parser


def _directions(args: argparse.Namespace) -> dict[str, Direction]:
    higher = [m for m in args.higher_is_better.split(",") if m]
    lower = [m for m in args.lower_is_better.split(",") if m]
    both = sorted(set(higher) & set(lower))
    if both:
        raise SystemExit(f"lossforge compare: {', '.join(both)} cannot be both higher- and lower-is-better")
    directions: dict[str, Direction] = {metric: "higher" for metric in higher}
    directions.update({metric: "lower" for metric in lower})
    return directions


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, compare, print the report (exit status 0); a comparison that cannot be made
    exits with its reason."""
    args = _parser().parse_args(argv)
    directions = _directions(args)
    if args.across:
        return _across(args, directions)
    machine = args.format in ("csv", "json")
    say: TextIO = sys.stderr if machine else sys.stdout  # keep stdout parseable for csv/json
    if args.no_log:
        print("lossforge compare: --no-log is the default now (compare only reads; --log writes)", file=sys.stderr)
    try:
        report = compare(
            args.run_id or args.sweep,
            tracking_uri=args.tracking_uri,
            experiment=args.experiment,
            metrics=[m for m in args.metrics.split(",") if m] if args.metrics else None,
            mean_over=args.mean_over,
            baseline=args.baseline,
            directions=directions,
            log=args.log and not args.no_log,
        )
    except ComparisonError as error:
        raise SystemExit(f"lossforge compare: {error}") from None
    print(report.render(args.format))
    for line in report.footer(report.save_figure(args.output)):
        print(line, file=say)
    return 0


def _across(args: argparse.Namespace, directions: dict[str, Direction]) -> int:
    """`lossforge compare --across RUN1,RUN2,… --metrics M`: the losses ranked over datasets."""
    metrics = [m for m in (args.metrics or "").split(",") if m]
    if len(metrics) != 1:
        raise SystemExit(
            "lossforge compare --across: name the one metric to rank by with --metrics, e.g. test/f1_macro"
        )
    try:
        report = compare_across(
            [run for run in args.across.split(",") if run],
            metric=metrics[0],
            tracking_uri=args.tracking_uri,
            directions=directions,
        )
    except ComparisonError as error:
        raise SystemExit(f"lossforge compare --across: {error}") from None
    print(report.to_text())
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report.figure.savefig(output, dpi=120)
    print(f"Critical-difference diagram: {output}")
    return 0
