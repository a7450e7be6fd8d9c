"""The plugin contract, written down once: the tasks, what lossforge reads from a loss or a miner, and
the vocabulary every module shares (environment switches, name normalising, "did you mean").

A loss or a miner is a plain `torch.nn.Module` subclass; it need not import lossforge. The
[LossPlugin][lossforge.contract.LossPlugin] and [MinerPlugin][lossforge.contract.MinerPlugin] Protocols list **every**
attribute and method the framework reads from one, each with its meaning. Only `tasks` (a loss) and `tuple_kind` (a
miner) are required; every other member is optional, and [loss_traits][lossforge.contract.loss_traits] /
[miner_traits][lossforge.contract.miner_traits] — the one place that reads a plugin through `getattr` — fill in the
documented default for a plugin that does not declare it. The contract kit ([lossforge.testing][]) checks the same
Protocols, so a plugin that passes the kit trains.

A component may also declare its `search_space`: a prior per tunable constructor parameter, as plain data
(`{"gamma": {"low": 0.0, "high": 5.0}}`) or as [FloatRange][lossforge.contract.FloatRange] /
[IntRange][lossforge.contract.IntRange] / [Categorical][lossforge.contract.Categorical].
[search_space][lossforge.contract.search_space] reads and validates it; [suggest][lossforge.contract.suggest] turns a
prior into an Optuna suggestion, so every loss is tuned with the same budget (the honest-comparison protocol).

One module per job — [tasks][lossforge.contract.tasks] (the tasks and which one a loss trains),
[protocols][lossforge.contract.protocols] (what lossforge reads from a plugin), [traits][lossforge.contract.traits]
(reading a plugin with the defaults filled in, and the checks), [priors][lossforge.contract.priors] (search spaces)
and [vocabulary][lossforge.contract.vocabulary] (entry-point groups, reserved keys, switches, messages). Every name
below is importable from `lossforge.contract`, the one import a plugin author needs.

This package imports neither torch nor any plugin, so the command line can use it while staying fast.

```pycon
>>> Task("multiclass") is Task.MULTICLASS, Task.METRIC == "metric"
(True, True)
>>> training_task(("metric",), Task.MULTICLASS)
<Task.METRIC: 'metric'>
>>> did_you_mean("focall", ["focal", "l1", "bce"])
" Did you mean 'focal'?"

```
"""

from lossforge.contract.priors import (
    Categorical,
    FloatRange,
    IntRange,
    Prior,
    describe_search_space,
    parse_prior,
    parse_search_space,
    search_space,
    suggest,
)
from lossforge.contract.protocols import DatasetPlugin, LossPlugin, MinerPlugin, ModelPlugin
from lossforge.contract.tasks import (
    CLASS_LABEL_TASKS,
    DATASET_TASKS,
    TARGET_ENCODINGS,
    TASKS,
    TUPLE_KINDS,
    TargetEncoding,
    Task,
    TupleKind,
    trainable_tasks,
    training_task,
)
from lossforge.contract.traits import (
    LossTraits,
    MinerTraits,
    check_component_class,
    check_dataset_callable,
    loss_parameters,
    loss_traits,
    miner_traits,
    prepare_loss,
    set_scan_targets,
    tuple_counts,
)
from lossforge.contract.vocabulary import (
    DATASET_GROUP,
    GROUPS,
    LOSS_GROUP,
    MINER_GROUP,
    MODEL_GROUP,
    MODEL_INPUTS,
    OWN_DISTRIBUTION,
    PLUGIN_HELP,
    PROVIDER_GROUP,
    RESERVED_DATASET_KEYS,
    RESERVED_MODEL_KEYS,
    ContractError,
    Switches,
    did_you_mean,
    normalize_distribution,
    shape,
)

__all__ = [
    "CLASS_LABEL_TASKS",
    "DATASET_GROUP",
    "DATASET_TASKS",
    "GROUPS",
    "LOSS_GROUP",
    "MINER_GROUP",
    "MODEL_GROUP",
    "MODEL_INPUTS",
    "OWN_DISTRIBUTION",
    "PLUGIN_HELP",
    "PROVIDER_GROUP",
    "RESERVED_DATASET_KEYS",
    "RESERVED_MODEL_KEYS",
    "TARGET_ENCODINGS",
    "TASKS",
    "TUPLE_KINDS",
    "Categorical",
    "ContractError",
    "DatasetPlugin",
    "FloatRange",
    "IntRange",
    "LossPlugin",
    "LossTraits",
    "MinerPlugin",
    "MinerTraits",
    "ModelPlugin",
    "Prior",
    "Switches",
    "TargetEncoding",
    "Task",
    "TupleKind",
    "check_component_class",
    "check_dataset_callable",
    "describe_search_space",
    "did_you_mean",
    "loss_parameters",
    "loss_traits",
    "miner_traits",
    "normalize_distribution",
    "parse_prior",
    "parse_search_space",
    "prepare_loss",
    "search_space",
    "set_scan_targets",
    "shape",
    "suggest",
    "trainable_tasks",
    "training_task",
    "tuple_counts",
]
