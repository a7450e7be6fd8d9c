"""`lossforge plot`'s library side: a command line's overrides expanded as a multirun would, each loss built,
and one figure of them all ([plot_losses][lossforge.evaluation.loss_figures.plotting.plot_losses]).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lossforge.contract import Task, loss_traits, prepare_loss
from lossforge.evaluation.loss_figures.axes import PROBE_PROXIES, plot_task
from lossforge.evaluation.loss_figures.curves import Curve, describe, loss_curves
from lossforge.evaluation.loss_figures.drawing import loss_figure
from lossforge.registry import LOSSES
from lossforge.tasks import spec_for

if TYPE_CHECKING:
    from matplotlib.figure import Figure


FORMATS = (".png", ".svg", ".pdf")
DEFAULT_OUT = Path("outputs/plots/loss.png")


def expand(overrides: Sequence[str]) -> list[list[str]]:
    """Every combination of Hydra sweep overrides (`loss=a,b loss.delta=1,2`), as a multirun expands them.

    ```pycon
    >>> expand(["loss=l1,huber", "loss.delta=1"])
    [['loss=l1', 'loss.delta=1'], ['loss=huber', 'loss.delta=1']]

    ```
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return BasicSweeper.split_arguments(parsed, None)[0]


def _check_parameters(combination: Sequence[str], name: str) -> None:
    """The registry's teaching error for a `loss.<parameter>` the loss does not have (Hydra's own only
    says it could not override it)."""
    accepted = LOSSES.parameters(name)
    for override in combination:
        key, _, value = override.partition("=")
        parameter = key.lstrip("+~").removeprefix("loss.")
        if key.lstrip("+~").startswith("loss.") and parameter not in accepted:
            LOSSES.build(name, **{parameter: value})  # raises: "has no parameter …, did you mean …"


def build_for_plot(
    combination: Sequence[str], task: str | None, *, always: Sequence[str] = ()
) -> tuple[Any, Task, str]:
    """Compose one combination of overrides, build its loss (per sample, prepared on the probe's balanced
    toy targets, so class weights are 1) and return it with its task and its legend."""
    from omegaconf import OmegaConf

    from lossforge.hydra_options import compose

    cfg = compose(list(combination))
    name = cfg.loss.name
    config = OmegaConf.to_container(cfg.loss, resolve=True)
    assert isinstance(config, dict)
    parameters: dict[str, Any] = {str(key): value for key, value in config.items() if key != "name"}
    loss = LOSSES.build(name, **{**parameters, "reduction": "none"})
    chosen = plot_task(loss, task)
    classes = 2 if spec_for(chosen).class_labels or chosen is Task.METRIC else 1
    _, targets = spec_for(chosen).example_inputs(
        batch=4, num_classes=classes, dim=1, dtype=torch.float32, generator=torch.Generator().manual_seed(0)
    )
    embedding_dim = len(PROBE_PROXIES[0]) if chosen is Task.METRIC else None  # a proxy loss sizes its proxies
    prepare_loss(loss, targets=targets, num_classes=classes, embedding_dim=embedding_dim)
    defaults = {key: parameter.default for key, parameter in LOSSES.parameters(name).items()}
    return loss, chosen, describe(name, parameters, defaults, always=always)


def plot_losses(
    overrides: Sequence[str],
    *,
    task: str | None = None,
    points: int = 201,
    low: float | None = None,
    high: float | None = None,
) -> Figure:
    """Each loss the Hydra `overrides` name — comma-separated values overlay each combination
    (`["loss=focal", "loss.gamma=0,2"]`) — and its derivative, against its task's axis (`task`: the first
    task the losses share, else each loss's own), as one figure.

    Raises:
        RegistryError: an unknown loss, or a parameter it does not have (with "did you mean").
        hydra.errors.HydraException: overrides Hydra cannot compose.
        ValueError, TypeError: a loss that cannot be probed for `task`.

    Examples:
        >>> plot_losses(["loss=l1,huber"], points=11).axes[0].get_xlabel()
        'residual r = prediction − target'
    """
    swept = [key.lstrip("+~").removeprefix("loss.") for key, *_ in (o.split("=", 1) for o in overrides)]
    curves: list[Curve] = []
    combinations = expand(overrides)
    task = task or common_task([_loss_name(combination) for combination in combinations])
    for combination in combinations:
        name = next((o.split("=", 1)[1] for o in combination if o.split("=", 1)[0] == "loss"), None)
        if name is not None:
            LOSSES.info(name)
            _check_parameters(combination, name)
        loss, loss_task, label = build_for_plot(combination, task, always=swept)
        curves += loss_curves(loss, loss_task, label=label, points=points, low=low, high=high)
    return loss_figure(curves)


def _loss_name(combination: Sequence[str]) -> str:
    """The loss a combination of overrides names (the config's default, cross-entropy, when none)."""
    return next((o.split("=", 1)[1] for o in combination if o.split("=", 1)[0] == "loss"), "cross_entropy")


def common_task(names: Sequence[str]) -> str | None:
    """The first task of the first loss that every named loss declares, so one figure shares one axis
    (`hinge,bce,focal` → binary: the margin); `None` when they share none (each gets its own row).

    ```pycon
    >>> common_task(["focal"]), common_task(["hinge", "bce", "focal"]), common_task(["l1", "focal"])
    ('multiclass', 'binary', None)

    ```
    """
    declared = [loss_traits(LOSSES.load(name)).tasks for name in dict.fromkeys(names)]
    return next((str(task) for task in declared[0] if all(task in tasks for tasks in declared)), None)
