"""A dataset plugin: interleaved spirals in the plane, one arm per class — a classic that a linear model
cannot separate. A plain function with a keyword-only `seed` (the split seed lossforge passes), returning
numpy arrays; it declares its task as a plain string and never imports lossforge.

```pycon
>>> splits = spirals(seed=0, per_class=20)
>>> {name: features.shape for name, (features, _) in splits.items()}
{'train': (42, 2), 'val': (9, 2), 'test': (9, 2)}

```
"""

from __future__ import annotations

import numpy as np


def spirals(
    *, seed: int, classes: int = 3, per_class: int = 100, noise: float = 0.2, turns: float = 1.5
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`classes` spiral arms of `per_class` points each, split 70/15/15 per class by `seed`.

    Point $i$ of arm $k$ is at radius $r = i / n$ and angle
    $\\theta = 2\\pi (\\text{turns} \\cdot r + k / K)$ plus Gaussian noise of `noise` radians.

    Args:
        seed: the split seed: draws the noise and which points are train, validation and test.
        classes: number of arms (classes), at least 2.
        per_class: points per arm, at least 10.
        noise: standard deviation of the angle noise, in radians.
        turns: how many turns each arm makes.
    """
    if classes < 2 or per_class < 10:
        raise ValueError(f"spirals: expected classes >= 2 and per_class >= 10, got {classes}, {per_class}")
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, per_class), classes)
    labels = np.repeat(np.arange(classes), per_class)
    angle = 2 * np.pi * (turns * radius + labels / classes) + rng.normal(0.0, noise, radius.shape)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)  # (N, 2) float64
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    held = max(1, round(0.15 * per_class))
    for label in range(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        parts["test"].append(members[:held])
        parts["val"].append(members[held : 2 * held])
        parts["train"].append(members[2 * held :])
    return {
        name: (points[np.sort(np.concatenate(index))], labels[np.sort(np.concatenate(index))])
        for name, index in parts.items()
    }


spirals.task = "multiclass"  # type: ignore[attr-defined]  # what lossforge reads: a plain string
