"""A run's configuration as one hash: what `sweep.resume` matches a job against its earlier runs with.

The hash is the sha256 of a canonical JSON text of the resolved config (keys sorted, no whitespace, ASCII
only; Python's `json` writes a float by its shortest round-tripping `repr`, the same in every process
and every Python 3 version), with the keys of [EXCLUDED][lossforge.tracking.config_hash.EXCLUDED] removed. Everything
that can change what a run computes stays in — the seed, the loss and its parameters, the model, data, optimizer,
trainer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

EXCLUDED = (
    "hydra",
    "run_name",
    "verbose",
    "resume",
    "sweep",
    "logger.tracking_uri",
    "logger.artifact_location",
    "trainer.enable_progress_bar",
    "trainer.default_root_dir",
)
"""Dotted keys left out of the hash, each because it cannot change what a run computes:

* `hydra` — Hydra's own node (output directories, job number, the launcher); not in a job's config.
* `run_name` — the run's label in MLflow.
* `verbose`, `trainer.enable_progress_bar` — what the terminal shows.
* `resume` — continues an earlier run from its checkpoint: the same computation.
* `sweep` — the switches `sweep.resume` and `sweep.fail_fast` themselves: a sweep re-run with
  `sweep.resume=true` must match the runs of the sweep that ran without it.
* `logger.tracking_uri`, `logger.artifact_location` — where the run is recorded (an output path,
  and the store's address, which may hold credentials).
* `trainer.default_root_dir` — where Lightning writes (an output path)."""


def config_hash(config: DictConfig | Mapping[str, Any]) -> str:
    """The sha256 (64 hex digits) of `config` resolved, without the keys of
    [EXCLUDED][lossforge.tracking.config_hash.EXCLUDED].

    Examples:
        >>> a = config_hash({"loss": {"name": "focal", "gamma": 2.0}, "seed": 0, "verbose": True})
        >>> a == config_hash({"seed": 0, "verbose": False, "loss": {"gamma": 2.0, "name": "focal"}})
        True
        >>> a == config_hash({"loss": {"name": "focal", "gamma": 2.0}, "seed": 1})
        False
        >>> a[:16]
        'ff083f03f3ff86b4'
    """
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


def canonical_json(config: DictConfig | Mapping[str, Any]) -> str:
    """`config` resolved, without [EXCLUDED][lossforge.tracking.config_hash.EXCLUDED], as JSON with sorted keys and no
    whitespace.

    ```pycon
    >>> canonical_json({"seed": 0, "run_name": "mine", "logger": {"tracking_uri": "x", "experiment": "e"}})
    '{"logger":{"experiment":"e"},"seed":0}'

    ```
    """
    if isinstance(config, DictConfig):
        plain: Any = OmegaConf.to_container(config, resolve=True)
    else:
        plain = OmegaConf.to_container(OmegaConf.create(dict(config)), resolve=True)
    for dotted in EXCLUDED:
        _drop(plain, dotted.split("."))
    # default=str: a value JSON has no type for (an enum a structured config holds) by its text, not a crash
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def _drop(node: Any, path: list[str]) -> None:
    """Remove `path` (a list of keys) from the nested dict `node`, if it is there."""
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
