"""What a multirun prints at its end: the summary lines, the table of failed jobs, and the hint that names
the comparison to run next.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlflow.entities import Run

if TYPE_CHECKING:
    from lossforge.evaluation.compare.report import ComparisonReport

from lossforge.sweeps.jobs import ERROR_TAG

log = logging.getLogger("lossforge")


def closing_hint(report: ComparisonReport | None) -> str:
    """What the sweep's last line adds to `lossforge compare <id>`: the baseline it judged against, and
    the seeds a verdict needs where the sweep ran fewer.

    ```pycon
    >>> closing_hint(None)
    ''

    ```
    """
    if report is None:
        return ""
    if report.baseline is None:
        return "no baseline: name one with --baseline <group>"
    needed = report.seeds_for_a_verdict()
    have = min((group.seeds for group in report.groups), default=0)
    text = f"baseline {report.baseline}"
    if needed is not None and have < needed:
        text += f"; a verdict needs ≥ {needed} seeds per group: add seed={','.join(map(str, range(needed)))}"
    return text


def sweep_summary(parent_run_id: str, runs: int, failed: list[str], *, hint: str = "") -> str:
    """What a sweep prints at its end: how many runs finished, which failed, and how to compare them.

    ```pycon
    >>> print(sweep_summary("abc", 3, ["focal-digits-2"], hint="baseline l2"))
    <BLANKLINE>
    Sweep finished: 2 of 3 runs FINISHED; not finished: focal-digits-2
    MLflow parent run: abc
    Compare them:      lossforge compare abc   (baseline l2)

    ```
    """
    status = f"{runs - len(failed)} of {runs} runs FINISHED" + (
        f"; not finished: {', '.join(failed)}" if failed else ""
    )
    return "\n".join(
        [
            "",
            f"Sweep finished: {status}",
            f"MLflow parent run: {parent_run_id}",
            f"Compare them:      lossforge compare {parent_run_id}" + (f"   ({hint})" if hint else ""),
        ]
    )


def failure_table(failed: Sequence[Run]) -> str:
    """The failed jobs of a sweep, one line each: job number, overrides, status and error (shortened), and
    how to rerun only them."""
    rows = [
        (
            child.data.tags.get("hydra.job_num", "?"),
            child.data.tags.get("hydra.overrides", ""),
            child.info.status,
            " ".join(child.data.tags.get(ERROR_TAG, "(no error recorded: the process died)").split())[:160],
        )
        for child in sorted(failed, key=lambda child: int(child.data.tags.get("hydra.job_num", "0") or 0))
    ]
    return "\n".join(
        [
            "",
            f"Failed jobs ({len(rows)}):",
            *_columns([("job", "overrides", "status", "error"), *rows]),
            "Rerun only these: the same command with sweep.resume=true (finished jobs are skipped).",
        ]
    )


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns, two spaces apart (the last column unpadded).

    ```pycon
    >>> _columns([("job", "error"), ("12", "ValueError: x")])
    ['  job  error', '  12   ValueError: x']

    ```
    """
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]) - 1)]
    padded = [[cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)] for row in rows]
    return ["  " + "  ".join([*cells, row[-1]]) for cells, row in zip(padded, rows, strict=True)]
