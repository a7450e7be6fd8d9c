"""`lossforge plot [OVERRIDE …] [--task TASK] [--out FILE] [--points N] [--range LOW HIGH]`: each loss and its
derivative against its task's axis ([lossforge.evaluation.loss_figures.plotting.plot_losses][]), written to a file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lossforge.contract import Task
from lossforge.evaluation.loss_figures.plotting import DEFAULT_OUT, FORMATS, plot_losses
from lossforge.overrides import check_overrides
from lossforge.registry import RegistryError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossforge plot",
        description=(
            "Plot losses and their derivatives the way the lecture draws them: against the residual "
            "(regression), the margin y·f (binary, multilabel), p_t (multiclass) or the distance (metric)."
        ),
        epilog=(
            "Examples: lossforge plot loss=l1,l2,huber | lossforge plot loss=hinge,bce,focal | "
            "lossforge plot loss=focal loss.gamma=0,0.5,1,2,5 --task multiclass --out focal.svg"
        ),
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides; comma-separated values overlay each one")
    parser.add_argument("--task", choices=[str(task) for task in Task], help="default: each loss's first task")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="a .png, .svg or .pdf file (%(default)s)")
    parser.add_argument("--points", type=int, default=201, help="points along the axis (%(default)s)")
    parser.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"), help="the x-axis range")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`lossforge plot [OVERRIDE …] [--task TASK] [--out FILE] [--points N] [--range LOW HIGH]`.

    Exit status 0 when the figure is written, 2 for a bad command line or config, 1 for a loss that
    cannot be probed.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     main(["loss=l1,huber", "--points", "11", "--out", f"{folder}/loss.svg"])  # doctest: +ELLIPSIS
        wrote ...loss.svg
        0
    """
    from hydra.errors import HydraException

    options = _parser().parse_args(list(argv) if argv is not None else None)
    if options.out.suffix.lower() not in FORMATS:
        return _error(f"--out must end in {', '.join(FORMATS)}, got {str(options.out)!r}", 2)
    problem = check_overrides(options.overrides)
    if problem:
        return _error(problem, 2)
    low, high = options.range or (None, None)
    try:
        figure = plot_losses(options.overrides, task=options.task, points=options.points, low=low, high=high)
    except (HydraException, RegistryError) as error:
        return _error(str(error), 2)
    except (ValueError, TypeError) as error:
        return _error(str(error), 1)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(options.out)
    print(f"wrote {options.out}")
    return 0


def _error(message: str, status: int) -> int:
    print(f"lossforge plot: error: {message}", file=sys.stderr)
    return status
