"""Seeded splitting: fractions checked, a private generator per seed, and indices partitioned into
train, val and test (stratified by class when asked), the same for the same seed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


# -- splitting -------------------------------------------------------------------------------------------
def check_fraction(name: str, value: float) -> None:
    """Raise a `ValueError` unless the split fraction `value` is strictly between 0 and 1.

    ```pycon
    >>> check_fraction("val_fraction", 15)
    Traceback (most recent call last):
    ...
    ValueError: Expected `val_fraction` in (0, 1) (a share of the samples, e.g. 0.15), got 15

    ```
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ValueError(f"Expected `{name}` in (0, 1) (a share of the samples, e.g. 0.15), got {value!r}")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise a `ValueError` unless both fractions are in (0, 1) and leave something to train on.

    ```pycon
    >>> check_fractions(0.15, 0.15)
    >>> check_fractions(0.5, 0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Expected val_fraction + test_fraction < 1 so that some data is left to train on, got 0.5 + ...

    ```
    """
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            "Expected val_fraction + test_fraction < 1 so that some data is left to train on, got "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction}"
        )


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU `torch.Generator` seeded with `seed`, so that a dataset never touches the global RNG.

    ```pycon
    >>> torch.randint(10, (3,), generator=seeded_generator(0)).tolist() == torch.randint(
    ...     10, (3,), generator=seeded_generator(0)).tolist()
    True

    ```
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"Expected `seed` to be an int, got {seed!r} ({type(seed).__name__})")
    return torch.Generator().manual_seed(seed)


def _apportion(counts: list[int], fraction: float, capacity: list[int], generator: torch.Generator) -> list[int]:
    """Split `round(sum(counts) * fraction)` samples over groups in proportion to `counts`.

    Largest-remainder rounding keeps the total exact (per-group rounding can leave a small split empty);
    ties are broken in a seeded random order so that no class is always the one that gets the extra sample.
    """
    total = min(round(sum(counts) * fraction), sum(capacity))
    ideal = [count * fraction for count in counts]
    given = [min(math.floor(share), cap) for share, cap in zip(ideal, capacity, strict=True)]
    shuffled = torch.randperm(len(counts), generator=generator).tolist()
    order = sorted(shuffled, key=lambda group: given[group] - ideal[group])  # stable: keeps random ties
    while sum(given) < total:
        for group in order:
            if sum(given) == total:
                break
            if given[group] < capacity[group]:
                given[group] += 1
    return given


def partition_indices(
    strata: Tensor, fractions: dict[str, float], *, seed: int, rest: str = "train"
) -> dict[str, Tensor]:
    """Seeded, stratified partition of `range(N)` into named parts of the given fractions plus the rest.

    Each stratum is shuffled with a generator seeded by `seed`; part `name` gets
    `round(N * fractions[name])` samples in total, spread over strata in proportion to their sizes, and
    `rest` gets what is left. Every part must be non-empty. Each returned tensor is sorted.

    Examples:
        >>> labels = torch.tensor([0] * 6 + [1] * 2)
        >>> parts = partition_indices(labels, {"val": 0.5}, seed=0)
        >>> labels[parts["val"]].tolist(), len(parts["train"])
        ([0, 0, 0, 1], 4)
    """
    if strata.dim() != 1:
        raise ValueError(f"Expected `strata` of shape (N,), one group per sample, got {tuple(strata.shape)}")
    for name, fraction in fractions.items():
        check_fraction(f"{name}_fraction", fraction)
    if sum(fractions.values()) >= 1.0:
        raise ValueError(f"Expected fractions that sum to less than 1, got {fractions}")
    num_samples = len(strata)
    generator = seeded_generator(seed)
    groups = [torch.nonzero(strata == group).flatten() for group in torch.unique(strata)]
    groups = [members[torch.randperm(len(members), generator=generator)] for members in groups]
    counts = [len(members) for members in groups]
    left = list(counts)
    pieces: dict[str, list[Tensor]] = {name: [] for name in (*fractions, rest)}
    for name, fraction in fractions.items():
        taken = _apportion(counts, fraction, left, generator)
        for index, (members, start, size) in enumerate(zip(groups, left, taken, strict=True)):
            # take from the end of each shuffled stratum; the rest keeps the front
            pieces[name].append(members[start - size : start])
            left[index] -= size
    pieces[rest] = [members[:start] for members, start in zip(groups, left, strict=True)]
    result = {}
    for name, parts in pieces.items():
        indices = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
        if len(indices) == 0:
            shares = ", ".join(f"{key}_fraction={value}" for key, value in fractions.items())
            raise ValueError(
                f"Splitting {num_samples} samples with {shares} leaves the {name} split empty; use more "
                "samples or other fractions."
            )
        result[name] = indices.sort().values
    return result


def split_indices(
    num_samples: int,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strata: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded train/val/test indices, stratified by `strata` (e.g. class labels) when given.

    Val and test get `round(N * fraction)` samples each, spread over strata in proportion to their sizes
    (see [partition_indices][lossforge.data.partition.partition_indices]). The same seed always gives the same indices.

    Args:
        num_samples: $N$, the number of samples to split.
        val_fraction: share of the samples in the validation split, in (0, 1).
        test_fraction: share of the samples in the test split, in (0, 1).
        seed: seeds the shuffle.
        strata: $(N,)$ int64 group of each sample; `None` splits without stratifying.

    Examples:
        >>> labels = torch.tensor([0] * 10 + [1] * 10)
        >>> train, val, test = split_indices(20, val_fraction=0.2, test_fraction=0.2, seed=0, strata=labels)
        >>> len(train), len(val), len(test)
        (12, 4, 4)
        >>> labels[test].bincount().tolist()  # stratified: both classes equally represented
        [2, 2]
    """
    check_fractions(val_fraction, test_fraction)
    if strata is None:
        strata = torch.zeros(num_samples, dtype=torch.int64)
    if strata.shape != (num_samples,):
        raise ValueError(f"Expected `strata` of shape ({num_samples},), got {tuple(strata.shape)}")
    parts = partition_indices(strata, {"test": test_fraction, "val": val_fraction}, seed=seed)
    return parts["train"], parts["val"], parts["test"]
