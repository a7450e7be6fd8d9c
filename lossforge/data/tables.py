"""`dataset=csv`: a CSV or Parquet file of one row per sample, its label column(s) named by `dataset.target`.

The task, unless `dataset.task` says it, follows one written rule ([infer_task][lossforge.data.tables.infer_task]), and
the choice is logged:

* several target columns: all 0/1 → `multilabel`, else multi-output `regression`;
* text labels (or booleans) → `multiclass` (`binary` when there are exactly two);
* an integer column with values 0/1 only → `binary`; with at most [MAX_CLASSES][lossforge.data.tables.MAX_CLASSES] (50)
  distinct values → `multiclass`; more → `regression`;
* a float column → `regression` (`multiclass` rules apply when every value is a whole number, as for an
  integer column: a label column read from CSV with a missing value would have become float — but missing
  values are refused anyway).

Splits are stratified by class (classification) and drawn from the split seed, or read from
`dataset.split_column` (values `train` / `val` / `test`). Features are standardised with statistics
fitted on the training split only. A non-numeric feature column, a missing value and an unknown column are
each one error naming the column. The file's path and SHA-256 are the run's provenance (MLflow tags
`data.path` and `data.sha256`).

```pycon
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
>>> _ = path.write_text("a,b,label\\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\\n" for i in range(40)))
>>> data = csv(seed=0, path=str(path), target="label")
>>> data.task.value, data.class_names, data.input_shape, data.provenance["path"] == str(path)
('binary', ('x', 'y'), (2,), True)

```
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossforge.contract import DATASET_TASKS, Task, did_you_mean
from lossforge.data.base import DataSplits
from lossforge.data.partition import check_fractions, split_indices
from lossforge.data.samples import Split
from lossforge.data.standardize import standardize_features

log = logging.getLogger("lossforge")

MAX_CLASSES = 50
"""An integer label column with at most this many distinct values is read as classes (multiclass)."""
SPLIT_NAMES = ("train", "val", "test")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: Path) -> Any:
    """The file as a `pyarrow.Table`: Parquet (`.parquet`, `.pq`) or CSV (anything else)."""
    if not path.is_file():
        raise FileNotFoundError(f"dataset.path={path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as parquet

        return parquet.read_table(path)
    import pyarrow.csv as pyarrow_csv

    return pyarrow_csv.read_csv(path)


def infer_task(columns: dict[str, np.ndarray]) -> tuple[Task, str]:
    """The task the target `columns` imply, and the reason in words (see the module docstring).

    ```pycon
    >>> infer_task({"y": np.array([0, 1, 1])})[0], infer_task({"y": np.array([0.5, 1.0])})[0]
    (<Task.BINARY: 'binary'>, <Task.REGRESSION: 'regression'>)
    >>> infer_task({"y": np.arange(100)})
    (<Task.REGRESSION: 'regression'>, "integer column 'y' with 100 distinct values (> 50)")

    ```
    """
    if len(columns) > 1:
        values = np.concatenate([np.asarray(column, dtype=object) for column in columns.values()])
        if all(value in (0, 1, True, False) for value in values):
            return Task.MULTILABEL, f"{len(columns)} target columns of 0/1"
        return Task.REGRESSION, f"{len(columns)} target columns, not all 0/1"
    ((name, column),) = columns.items()
    if column.dtype.kind in "OUSb":
        distinct = len(set(column.tolist()))
        task = Task.BINARY if distinct == 2 else Task.MULTICLASS
        return task, f"text column {name!r} with {distinct} distinct labels"
    whole = column.dtype.kind in "iu" or bool(np.all(np.mod(column, 1) == 0))
    if not whole:
        return Task.REGRESSION, f"float column {name!r}"
    distinct_values = set(np.unique(column).tolist())
    if distinct_values <= {0, 1}:
        return Task.BINARY, f"column {name!r} of 0/1"
    if len(distinct_values) <= MAX_CLASSES:
        return (
            Task.MULTICLASS,
            f"integer column {name!r} with {len(distinct_values)} distinct values (<= {MAX_CLASSES})",
        )
    return Task.REGRESSION, f"integer column {name!r} with {len(distinct_values)} distinct values (> {MAX_CLASSES})"


def _column(table: Any, name: str, available: Sequence[str], role: str) -> np.ndarray:
    if name not in available:
        raise ValueError(
            f"dataset=csv: unknown {role} column {name!r}.{did_you_mean(name, available, n=1)} "
            f"Columns: {', '.join(available)}."
        )
    column = table.column(name)
    if column.null_count:
        raise ValueError(
            f"dataset=csv: column {name!r} has {column.null_count} missing value(s); drop or impute those rows "
            "before training (lossforge does not guess them)."
        )
    return np.asarray(column.to_numpy(zero_copy_only=False))


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(item) for item in value]


def csv(
    *,
    seed: int,
    path: str | None = None,
    target: Any = None,
    features: Any = None,
    task: str | None = None,
    split_column: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    standardize: bool = True,
) -> DataSplits:
    """A table read from `path` (CSV, or Parquet by its suffix).

    Args:
        seed: the split seed (`dataset.split_seed`).
        path: the CSV or Parquet file (`~` expanded).
        target: the label column, or a list of columns (multilabel, multi-output regression).
        features: the feature columns; `None`: every other column (except `split_column`).
        task: `multiclass` | `binary` | `multilabel` | `regression`; `None`:
            [infer_task][lossforge.data.tables.infer_task].
        split_column: a column of `train` / `val` / `test` per row; `None`: a seeded split, stratified
            by class for classification.
        val_fraction: share of the rows in the validation split (without `split_column`).
        test_fraction: share of the rows in the test split (without `split_column`).
        standardize: standardise every feature with the training split's mean and std.
    """
    if path is None or not target:
        raise ValueError(
            "dataset=csv needs dataset.path (a .csv or .parquet file) and dataset.target (the label column, or a "
            "list of columns), e.g. dataset=csv dataset.path=data/iris.csv dataset.target=species"
        )
    file = Path(path).expanduser()
    table = read_table(file)
    available = list(table.column_names)
    targets_named = _names(target)
    excluded = set(targets_named) | ({split_column} if split_column else set())
    feature_names = _names(features) or [name for name in available if name not in excluded]
    if not feature_names:
        raise ValueError(f"dataset=csv: no feature columns left in {file} (columns: {', '.join(available)})")
    target_columns = {name: _column(table, name, available, "target") for name in targets_named}
    if task is None:
        chosen, reason = infer_task(target_columns)
        log.info("data     csv: task %s inferred from the %s (set dataset.task to choose)", chosen, reason)
    elif task not in DATASET_TASKS:
        raise ValueError(
            f"dataset.task={task!r}.{did_you_mean(task, [str(t) for t in DATASET_TASKS], n=1)} "
            f"Expected one of {', '.join(DATASET_TASKS)}."
        )
    else:
        chosen = Task(task)
    columns = []
    for name in feature_names:
        values = _column(table, name, available, "feature")
        if values.dtype.kind not in "biuf":
            example = next(iter(values.tolist()), "")
            raise ValueError(
                f"dataset=csv: feature column {name!r} is not numeric (e.g. {example!r}). Encode it first — one-hot "
                f"columns for a category (pandas.get_dummies), or a number per level for an ordered one — or leave "
                f"it out with dataset.features=[...]."
            )
        columns.append(values.astype(np.float32))
    matrix = torch.from_numpy(np.stack(columns, axis=1))  # (N, F)
    targets, class_names = _encode_targets(target_columns, chosen)
    parts = _split(table, split_column, available, targets, chosen, seed, val_fraction, test_fraction)
    train, val, test = (Split(matrix[index], targets[index]) for index in parts)
    if standardize:
        train, val, test = standardize_features(train, val, test)
    num_outputs = {
        Task.MULTICLASS: len(class_names),
        Task.BINARY: 1,
        Task.MULTILABEL: len(targets_named),
        Task.REGRESSION: len(targets_named),
    }[chosen]
    names = class_names if chosen in (Task.MULTICLASS, Task.BINARY) else ()
    if chosen == Task.MULTILABEL:
        names = tuple(targets_named)
    return DataSplits(
        "csv",
        chosen,
        train,
        val,
        test,
        num_outputs=num_outputs,
        class_names=names,
        provenance={"path": str(file), "sha256": file_sha256(file), "task_rule": str(chosen)},
    )


def _encode_targets(columns: dict[str, np.ndarray], task: Task) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Targets as the task needs them, and the class names (sorted labels) for class tasks."""
    if task in (Task.MULTICLASS, Task.BINARY):
        if len(columns) != 1:
            raise ValueError(f"dataset=csv: a {task} task takes one target column, got {list(columns)}")
        ((name, column),) = columns.items()
        labels = sorted(set(column.tolist()), key=lambda label: (str(type(label)), label))
        if task == Task.BINARY and len(labels) != 2:
            raise ValueError(f"dataset=csv: a binary task needs 2 distinct labels in {name!r}, got {len(labels)}")
        index = {label: position for position, label in enumerate(labels)}
        encoded = torch.tensor([index[label] for label in column.tolist()], dtype=torch.int64)
        return encoded, tuple(str(label) for label in labels)
    stacked = []
    for name, column in columns.items():
        if column.dtype.kind not in "biuf":
            raise ValueError(f"dataset=csv: target column {name!r} must be numeric for a {task} task")
        stacked.append(column.astype(np.float32))
    values = torch.from_numpy(np.stack(stacked, axis=1))  # (N, D)
    return (values[:, 0] if task == Task.REGRESSION and len(stacked) == 1 else values), ()


def _split(
    table: Any,
    split_column: str | None,
    available: list[str],
    targets: torch.Tensor,
    task: Task,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if split_column is not None:
        values = [str(value).strip().lower() for value in _column(table, split_column, available, "split").tolist()]
        wrong = sorted(set(values) - set(SPLIT_NAMES))
        if wrong:
            raise ValueError(f"dataset=csv: split column {split_column!r} holds {wrong[:5]}; expected train, val, test")
        parts = tuple(torch.tensor([i for i, value in enumerate(values) if value == name]) for name in SPLIT_NAMES)
        for name, part in zip(SPLIT_NAMES, parts, strict=True):
            if len(part) == 0:
                raise ValueError(f"dataset=csv: split column {split_column!r} has no {name!r} rows")
        return parts  # type: ignore[return-value]
    check_fractions(val_fraction, test_fraction)
    strata = targets if task in (Task.MULTICLASS, Task.BINARY) else None
    return split_indices(len(targets), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, strata=strata)
