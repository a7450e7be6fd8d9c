"""One `TaskSpec` per task: what each task means for the model's head, targets, metrics and plots.

```pycon
>>> spec_for("binary").class_labels, spec_for(Task.METRIC).embedding
(True, True)

```
"""

from __future__ import annotations

from lossforge.contract import TASKS, Task
from lossforge.tasks.base import TaskSpec
from lossforge.tasks.binary import BinarySpec
from lossforge.tasks.metric import MetricSpec
from lossforge.tasks.multiclass import MulticlassSpec
from lossforge.tasks.multilabel import MultilabelSpec
from lossforge.tasks.regression import RegressionSpec

__all__ = ["SPECS", "TaskSpec", "spec_for"]

SPECS: dict[Task, TaskSpec] = {
    spec.task: spec for spec in (RegressionSpec(), BinarySpec(), MulticlassSpec(), MultilabelSpec(), MetricSpec())
}
assert set(SPECS) == set(TASKS), "every Task needs a TaskSpec"


def spec_for(task: str) -> TaskSpec:
    """The spec of `task` (a [Task][lossforge.contract.Task] or its string); `ValueError` if unknown."""
    try:
        return SPECS[Task(task)]
    except ValueError:
        raise ValueError(f"unknown task {task!r}; expected one of {[str(t) for t in TASKS]}") from None
