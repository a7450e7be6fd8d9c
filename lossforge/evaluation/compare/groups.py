"""A sweep's runs as rows, and the rows pooled into groups: runs that differ only in the seed (and whatever
`--mean-over` adds) are one group, named by its loss and what else tells it apart (`focal gamma=2`).

Which runs of a group count follows `docs/decisions.md` §2: the newest finished run of each seed; the seeds
that diverged are counted apart; failed and killed runs are left out. Plain data in, plain data out: nothing
here reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lossforge.tracking.runs import ERROR_TAG, OUTCOME_TAG

SEED = "seed"
"""The parameter a comparison always pools over: runs that differ only in it are one group."""
IGNORED_PARAMS = ("hydra", "run_name", "resume", "verbose", "sweep.", "trainer.enable_progress_bar")
"""Parameters that never tell groups apart: Hydra's bookkeeping, names, and switches that change no result."""
COUNTED = ("finished", "diverged")
"""The outcomes a comparison counts (docs/decisions.md §2): finished runs give values, diverged ones are
reported as "diverged on k of n seeds". Failed and killed runs are listed under the table."""


def run_outcome(status: str, tags: Mapping[str, str]) -> str:
    """How a run ended: its `lossforge.outcome` tag, else what its MLflow status and `lossforge.error` say.

    Examples:
        >>> run_outcome("FAILED", {"lossforge.outcome": "diverged"}), run_outcome("KILLED", {})
        ('diverged', 'killed')
        >>> run_outcome("FAILED", {"lossforge.error": "NonFiniteLossError: loss is nan at step 3"})
        'diverged'
        >>> run_outcome("FAILED", {}), run_outcome("RUNNING", {})
        ('failed', 'running')
    """
    tagged = tags.get(OUTCOME_TAG)
    if tagged:
        return tagged
    if status == "FAILED":  # runs from before the outcome tag: the guard's error names the divergence
        error = tags.get(ERROR_TAG, "")
        return "diverged" if "NonFinite" in error or "diverg" in error.lower() else "failed"
    return {"FINISHED": "finished", "KILLED": "killed"}.get(status, status.lower())


@dataclass(frozen=True)
class Row:
    """One run of the sweep, as MLflow has it."""

    run_name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    outcome: str = "finished"  # lossforge.outcome (run_outcome): finished, diverged, failed, killed, …
    error: str = ""  # lossforge.error: why it did not finish
    start_time: int = 0  # ms since the epoch: the newest run of a seed counts
    run_id: str = ""
    task: str = ""  # the run's ``task`` tag


def row_of(run: Any) -> Row:
    """A [Row][lossforge.evaluation.compare.groups.Row] from an MLflow `Run`."""
    tags = dict(run.data.tags)
    return Row(
        run_name=run.info.run_name or run.info.run_id,
        status=run.info.status,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        outcome=run_outcome(run.info.status, tags),
        error=tags.get(ERROR_TAG, ""),
        start_time=int(run.info.start_time or 0),
        run_id=run.info.run_id,
        task=tags.get("task", ""),
    )


@dataclass(frozen=True)
class Group:
    """Runs that differ only in the pooled parameters `keys` (the seed); with no `keys`, one run."""

    label: str  # unique in the table: the loss (+ miner), and what else tells the group apart
    loss: str  # loss name (+ "+miner"), what ``--baseline`` matches besides the label
    runs: tuple[Row, ...]  # every run of the group, however it ended
    keys: tuple[str, ...]  # the pooled parameters: their values name a run's seed inside the group

    def seed(self, run: Row) -> str:
        """The run's place in the group: its seed (`0`), the pooled values (`0/1`), or its run name."""
        if not self.keys:
            return run.params.get(SEED, run.run_name)
        return "/".join(run.params.get(key, "") for key in self.keys)

    def kept(self) -> dict[str, Row]:
        """Seed → the newest finished run of that seed: a re-run is not an independent replicate."""
        newest: dict[str, Row] = {}
        for run in sorted(self.runs, key=lambda run: run.start_time):
            if run.outcome == "finished":
                newest[self.seed(run)] = run
        return newest

    def repeats(self) -> dict[str, int]:
        """Seed → how many finished runs it has, where it has more than one."""
        counts: dict[str, int] = {}
        for run in self.runs:
            if run.outcome == "finished":
                counts[self.seed(run)] = counts.get(self.seed(run), 0) + 1
        return {seed: count for seed, count in counts.items() if count > 1}

    def diverged(self) -> list[str]:
        """The seeds whose run diverged (and that have no finished run)."""
        kept = self.kept()
        return sorted({self.seed(run) for run in self.runs if run.outcome == "diverged"} - set(kept))

    @property
    def seeds(self) -> int:
        """How many seeds the group ran to an outcome of the loss: finished or diverged."""
        return len(self.kept()) + len(self.diverged())

    def left_out(self) -> list[Row]:
        """Runs that neither finished nor diverged: failed, killed, still running."""
        return [run for run in self.runs if run.outcome not in COUNTED]

    @property
    def status(self) -> str:
        """`finished`, `k of n seeds diverged`, or how its only runs ended."""
        diverged = len(self.diverged())
        if diverged:
            return f"{diverged} of {self.seeds} seeds diverged"
        if self.kept():
            return "finished"
        return ", ".join(sorted({run.outcome for run in self.runs}))

    def values(self, metric: str) -> dict[str, float]:
        """Seed → the finite value of `metric` in the newest finished run of that seed."""
        values: dict[str, float] = {}
        for seed, run in self.kept().items():
            value = run.metrics.get(metric)
            if value is not None and math.isfinite(value):
                values[seed] = value
        return values

    def missing(self, metric: str) -> list[str]:
        """The seeds whose kept run has no finite value of `metric`."""
        return [seed for seed in self.kept() if seed not in self.values(metric)]


def _ignored(key: str) -> bool:
    return key.startswith(IGNORED_PARAMS)


def varying_params(rows: Sequence[Row]) -> list[str]:
    """Parameter keys whose values differ between rows — the ones that explain the differences.

    ```pycon
    >>> rows = [Row("a", "FINISHED", {"loss.name": "l1", "seed": "0"}, {}),
    ...         Row("b", "FINISHED", {"loss.name": "l2", "seed": "0"}, {})]
    >>> varying_params(rows)
    ['loss.name']

    ```
    """
    keys = sorted({key for row in rows for key in row.params})
    return [key for key in keys if not _ignored(key) and len({row.params.get(key) for row in rows}) > 1]


def loss_label(params: Mapping[str, str]) -> str:
    """`loss` or `loss+miner` from a run's params.

    ```pycon
    >>> loss_label({"loss.name": "triplet", "miner.name": "semihard_triplets"}), loss_label({"loss.name": "l1"})
    ('triplet+semihard_triplets', 'l1')

    ```
    """
    name = params.get("loss.name", "?")
    miner = params.get("miner.name")
    return f"{name}+{miner}" if miner not in (None, "", "null", "None") else name


def pooled_keys(mean_over: str | Sequence[str] | None) -> tuple[str, ...]:
    """The parameters a comparison pools over: the seed always, and `mean_over` (comma-separated) too;
    `"none"`: nothing (every run its own row).

    ```pycon
    >>> pooled_keys(None), pooled_keys("dataset.split_seed"), pooled_keys("seed"), pooled_keys("none")
    (('seed',), ('seed', 'dataset.split_seed'), ('seed',), ())

    ```
    """
    names = mean_over.split(",") if isinstance(mean_over, str) else list(mean_over or [])
    names = [name.strip() for name in names if name.strip()]
    if [name.lower() for name in names] == ["none"]:
        return ()
    return tuple(dict.fromkeys([SEED, *names]))


def _short(key: str) -> str:
    """A parameter as a group's name shows it: the loss's own options without `loss.`."""
    return key.removeprefix("loss.")


def group_runs(rows: Sequence[Row], keys: str | Sequence[str] = (SEED,)) -> list[Group]:
    """Groups of rows that differ only in the pooled parameters `keys` (and names and Hydra's
    bookkeeping), in order of first run; without `keys` every run is its own group.

    A group is named by its loss (+ miner) and, where other groups share that, by what tells them apart:
    `focal gamma=0` and `focal gamma=2`.

    Examples:
        >>> rows = [Row("l1-0", "FINISHED", {"loss.name": "l1", "seed": "0"}, {"test/mae": 1.0}),
        ...         Row("l1-1", "FINISHED", {"loss.name": "l1", "seed": "1"}, {"test/mae": 3.0}),
        ...         Row("l2-0", "FINISHED", {"loss.name": "l2", "seed": "0"}, {"test/mae": 2.0})]
        >>> [(group.label, group.values("test/mae")) for group in group_runs(rows)]
        [('l1', {'0': 1.0, '1': 3.0}), ('l2', {'0': 2.0})]
        >>> [group.label for group in group_runs(rows, ())]
        ['l1 seed=0', 'l1 seed=1', 'l2']
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    members: dict[object, list[Row]] = {}
    for number, row in enumerate(rows):
        identity = tuple(sorted((k, v) for k, v in row.params.items() if k not in keys and not _ignored(k)))
        members.setdefault(identity if keys else number, []).append(row)
    runs = [tuple(group) for group in members.values()]
    losses = [loss_label(group[0].params) for group in runs]
    labels = []
    for loss, group in zip(losses, runs, strict=True):
        namesakes = [other[0] for other, name in zip(runs, losses, strict=True) if name == loss]
        telling = [key for key in varying_params(namesakes) if key not in (*keys, "loss.name", "miner.name")]
        details = " ".join(f"{_short(key)}={_param(group[0].params.get(key, ''))}" for key in telling)
        labels.append(f"{loss} {details}" if details else loss)
    return [Group(label, loss, group, keys) for label, loss, group in zip(_unique(labels), losses, runs, strict=True)]


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique


def _param(value: str) -> str:
    """A parameter as the table shows it: tuned floats to 4 significant digits, the rest as logged.

    ```pycon
    >>> _param("0.0022373901095679746"), _param("1e-05"), _param("64"), _param("euclidean")
    ('0.002237', '1e-05', '64', 'euclidean')

    ```
    """
    try:
        number = float(value)
    except ValueError:
        return value
    return value if value.lstrip("-").isdigit() else f"{number:.4g}"
