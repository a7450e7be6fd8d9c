"""The vocabulary every module shares: the entry-point groups, the config keys lossforge keeps for itself,
the contract's error, environment switches, name normalising, "did you mean" and a tensor's shape in messages.

```pycon
>>> did_you_mean("focall", ["focal", "l1", "bce"])
" Did you mean 'focal'?"

```
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


LOSS_GROUP = "lossforge.losses"
MINER_GROUP = "lossforge.miners"
DATASET_GROUP = "lossforge.datasets"
MODEL_GROUP = "lossforge.models"
GROUPS: dict[str, str] = {"loss": LOSS_GROUP, "miner": MINER_GROUP, "dataset": DATASET_GROUP, "model": MODEL_GROUP}
"""The entry-point group of each component kind."""
PROVIDER_GROUP = "lossforge.providers"
"""One entry point, many components: `name = "module:function"`; the function returns
`{"lossforge.losses": {name: "module:attribute"}, "lossforge.miners": {...}}` (see [lossforge.registry][])."""
PLUGIN_HELP = (
    "Losses, miners, datasets and models come from Python entry points in the groups 'lossforge.losses', "
    "'lossforge.miners', 'lossforge.datasets' and 'lossforge.models' (or from a provider in "
    "'lossforge.providers', one entry point for many): `pip install` a package that declares them (see "
    "plugins/README.md), then `lossforge list` shows it."
)
RESERVED_DATASET_KEYS: tuple[str, ...] = ("split_seed", "augment", "class_disjoint")
"""Dataset settings lossforge reads itself; never passed to the dataset function."""
RESERVED_MODEL_KEYS: tuple[str, ...] = ("weights", "freeze_batchnorm", "embedding_dim", "normalize")
"""Model settings lossforge applies itself; never passed to the model's constructor (docs/your-data.md)."""
MODEL_INPUTS: tuple[str, ...] = ("input_shape", "output_dim")
"""Constructor keywords lossforge fills in from the data and the task; not config parameters."""


class ContractError(TypeError):
    """A class that does not meet the loss or miner contract; the message names it and the rule.

    `rule` is the broken promise alone (`"must declare …"`), for callers that name the class their way.
    """

    def __init__(self, subject: str, rule: str) -> None:
        super().__init__(f"{subject} {rule}")
        self.rule = rule


def _label(obj: Any) -> str:
    cls = obj if inspect.isclass(obj) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def normalize_distribution(name: str) -> str:
    """A distribution name the way pip compares them: case, `-`, `_` and `.` do not matter.

    ```pycon
    >>> normalize_distribution("Lossforge_Extras")
    'lossforge-extras'

    ```
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def did_you_mean(name: str, options: Iterable[str], *, n: int = 3) -> str:
    """`" Did you mean 'x'?"` (or `'x' or 'y'`) for the close matches of `name`, else `""`.

    ```pycon
    >>> did_you_mean("gamme", ["gamma", "alpha"])
    " Did you mean 'gamma'?"
    >>> did_you_mean("zzz", ["gamma"])
    ''

    ```
    """
    close = difflib.get_close_matches(name, list(options), n=n, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(option) for option in close)}?" if close else ""


def shape(tensor: Tensor) -> str:
    """A tensor's shape the way error messages print it, `(8, 5)` — shared by losses and miners.

    ```pycon
    >>> import torch
    >>> shape(torch.zeros(8, 5)), shape(torch.zeros(3))
    ('(8, 5)', '(3,)')

    ```
    """
    return "(" + ", ".join(str(d) for d in tensor.shape) + ("," if tensor.dim() == 1 else "") + ")"


_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Switches:
    """lossforge's environment switches, parsed in one place.

    * `LOSSFORGE_DISABLE_PLUGINS=1` — only lossforge's own components are discovered;
    * `LOSSFORGE_BLOCK_PLUGINS=pkg_a,pkg_b` — components from these distributions are ignored;
    * `LOSSFORGE_TRACEBACK=1` — errors show their traceback instead of one paragraph;
    * `LOSSFORGE_ALLOW_TARGETS=1` — any `_target_` in the composed config is allowed (`config_checks`).

    ```pycon
    >>> switches = Switches.read({"LOSSFORGE_BLOCK_PLUGINS": "Foo_Bar, baz", "LOSSFORGE_TRACEBACK": "1"})
    >>> sorted(switches.blocked_plugins), switches.traceback, switches.disable_plugins  # a set's order varies
    (['baz', 'foo-bar'], True, False)

    ```
    """

    disable_plugins: bool = False
    blocked_plugins: frozenset[str] = frozenset()
    traceback: bool = False
    allow_targets: bool = False

    @classmethod
    def read(cls, environment: Mapping[str, str] | None = None) -> Switches:
        """Parse the switches from `environment` (default: this process's)."""
        env = os.environ if environment is None else environment
        blocked = env.get("LOSSFORGE_BLOCK_PLUGINS", "").split(",")
        return cls(
            disable_plugins=env.get("LOSSFORGE_DISABLE_PLUGINS", "").strip().lower() in _TRUE,
            blocked_plugins=frozenset(normalize_distribution(name.strip()) for name in blocked if name.strip()),
            traceback=env.get("LOSSFORGE_TRACEBACK", "").strip().lower() in _TRUE,
            allow_targets=env.get("LOSSFORGE_ALLOW_TARGETS", "").strip().lower() in _TRUE,
        )

    def admits(self, distribution: str | None) -> bool:
        """Whether components from `distribution` are discovered under these switches."""
        normalized = normalize_distribution(distribution or "")
        if self.disable_plugins and normalized != OWN_DISTRIBUTION:
            return False
        return normalized not in self.blocked_plugins


OWN_DISTRIBUTION = "lossforge"
"""The distribution that provides lossforge's own components."""
