"""The tasks: what a dataset asks of a model and what a loss can train, and which task a loss trains on a
dataset (a metric loss also trains an embedding on any class-labelled dataset).

```pycon
>>> Task("multiclass") is Task.MULTICLASS, Task.METRIC == "metric"
(True, True)
>>> training_task(("metric",), Task.MULTICLASS)
<Task.METRIC: 'metric'>

```
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Literal


class Task(enum.StrEnum):
    """What a dataset asks of a model, and what a loss can train.

    A `StrEnum`: each member *is* its string (`Task.BINARY == "binary"`), so configs, MLflow tags and
    plugins that declare `tasks = ("regression",)` as plain strings need no conversion. What a task
    means for training — output head, prediction rule, metrics, target encoding, plots — lives in one
    `TaskSpec` per task ([lossforge.tasks][]).
    """

    REGRESSION = "regression"  #: real-valued targets (N,) or (N, D)
    BINARY = "binary"  #: one score per sample; targets 0/1
    MULTICLASS = "multiclass"  #: C logits per sample; targets are class indices
    MULTILABEL = "multilabel"  #: K independent yes/no labels per sample
    METRIC = "metric"  #: an embedding trained from class labels, evaluated by retrieval


TASKS: tuple[Task, ...] = tuple(Task)
"""Every task, in declaration order."""
DATASET_TASKS: tuple[Task, ...] = (Task.REGRESSION, Task.BINARY, Task.MULTICLASS, Task.MULTILABEL)
"""The tasks a dataset can declare (a metric loss trains on a class-labelled dataset)."""
CLASS_LABEL_TASKS: tuple[Task, ...] = (Task.BINARY, Task.MULTICLASS)
"""Dataset tasks whose targets are one class label per sample, so a metric loss can embed them."""

TupleKind = Literal["pair", "triplet"]
TUPLE_KINDS: tuple[str, ...] = ("pair", "triplet")
TargetEncoding = Literal["zero_one", "plus_minus_one"]
TARGET_ENCODINGS: tuple[str, ...] = ("zero_one", "plus_minus_one")


def training_task(loss_tasks: Iterable[str], dataset_task: str) -> Task | None:
    """The task a loss declaring `loss_tasks` trains on a dataset of `dataset_task`, or `None`.

    A loss trains its dataset's own task if it declares it; a metric loss also trains an embedding on
    any class-labelled dataset ([CLASS_LABEL_TASKS][lossforge.contract.CLASS_LABEL_TASKS]).

    ```pycon
    >>> training_task(("regression",), "regression")
    <Task.REGRESSION: 'regression'>
    >>> training_task(("multiclass",), "regression") is None
    True

    ```
    """
    declared = set(loss_tasks)
    return next((task for task in trainable_tasks(dataset_task) if task in declared), None)


def trainable_tasks(dataset_task: str) -> tuple[Task, ...]:
    """The tasks a loss can train on a dataset of `dataset_task`, preferred first: the dataset's own,
    then metric learning on class labels.

    ```pycon
    >>> trainable_tasks("binary")
    (<Task.BINARY: 'binary'>, <Task.METRIC: 'metric'>)

    ```
    """
    task = Task(dataset_task)
    return (task, Task.METRIC) if task in CLASS_LABEL_TASKS else (task,)
