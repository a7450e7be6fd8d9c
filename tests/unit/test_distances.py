"""Distances against explicit loops, finite gradients at zero distance, and the name lookup."""

from __future__ import annotations

import math

import pytest
import torch

from lossforge.mining.distances import (
    DISTANCES,
    check_distance,
    cosine,
    euclidean,
    indexed_distances,
    paired_distance,
    pairwise_distance,
    squared_euclidean,
)


def reference(u: torch.Tensor, v: torch.Tensor, distance: str) -> float:
    """One distance, from its textbook definition."""
    if distance == "cosine":
        norm_u, norm_v = math.sqrt(sum(a * a for a in u.tolist())), math.sqrt(sum(b * b for b in v.tolist()))
        dot = sum(a * b for a, b in zip(u.tolist(), v.tolist(), strict=True))
        return 1.0 - dot / (norm_u * norm_v)
    squared = sum((a - b) ** 2 for a, b in zip(u.tolist(), v.tolist(), strict=True))
    return squared if distance == "squared_euclidean" else math.sqrt(squared)


def reference_matrix(x: torch.Tensor, y: torch.Tensor, distance: str) -> torch.Tensor:
    return torch.tensor([[reference(u, v, distance) for v in y] for u in x], dtype=torch.float64)


@pytest.fixture
def points() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=generator, dtype=torch.float64) + 3.0  # offset: tests the centring
    x[4] = x[1]  # a duplicate: zero distance off the diagonal
    return x


@pytest.mark.parametrize("distance", DISTANCES)
def test_matrix_matches_loop(points: torch.Tensor, distance: str) -> None:
    other = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # 1e-6 absolute: the Euclidean sqrt is clamped at 1e-6 for zero distances
    torch.testing.assert_close(
        pairwise_distance(points, distance=distance),
        reference_matrix(points, points, distance),
        atol=1e-6,
        rtol=0,
    )
    torch.testing.assert_close(
        pairwise_distance(points, other, distance=distance),
        reference_matrix(points, other, distance),
        atol=1e-6,
        rtol=1e-9,
    )


def test_named_functions_are_the_matrix_distances(points: torch.Tensor) -> None:
    for function, name in (
        (euclidean, "euclidean"),
        (squared_euclidean, "squared_euclidean"),
        (cosine, "cosine"),
    ):
        torch.testing.assert_close(function(points), pairwise_distance(points, distance=name))


def test_diagonal_is_exact_for_squared_and_cosine(points: torch.Tensor) -> None:
    assert torch.all(squared_euclidean(points).diagonal() == 0)
    assert torch.all(cosine(points).diagonal() == 0)
    assert torch.all(squared_euclidean(points) >= 0)


@pytest.mark.parametrize("distance", DISTANCES)
def test_paired_matches_loop(points: torch.Tensor, distance: str) -> None:
    other = points.flip(0)
    expected = torch.tensor([reference(u, v, distance) for u, v in zip(points, other, strict=True)])
    torch.testing.assert_close(
        paired_distance(points, other, distance=distance), expected.double(), atol=1e-6, rtol=1e-9
    )


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("num_pairs", [3, 60])  # few pairs gather rows; many index the matrix
def test_indexed_matches_loop(points: torch.Tensor, distance: str, num_pairs: int) -> None:
    generator = torch.Generator().manual_seed(2)
    first, second = torch.randint(7, (2, num_pairs), generator=generator)
    (result,) = indexed_distances(points, (first, second), distance=distance)
    expected = torch.tensor([reference(points[i], points[j], distance) for i, j in zip(first, second, strict=True)])
    torch.testing.assert_close(result, expected.double(), atol=1e-6, rtol=1e-9)


def test_indexed_gathers_rows_for_at_most_two_pairs_per_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch-hard triplets give 2N pairs: no (N, N) matrix, and anchors shared by both pairs gathered once."""
    import lossforge.mining.distances as distances

    embeddings = torch.randn(6, 32, dtype=torch.float64, requires_grad=True)  # 2N·D = 384 > N² = 36
    anchor, positive, negative = torch.arange(6), torch.tensor([1, 0, 3, 2, 5, 4]), torch.tensor([2, 3, 0, 1, 0, 1])
    matrix = pairwise_distance(embeddings, distance="euclidean")
    expected = (matrix[anchor, positive], matrix[anchor, negative])

    def no_matrix(*args: object, **kwargs: object) -> None:
        raise AssertionError("built the distance matrix for 2N pairs")

    monkeypatch.setattr(distances, "pairwise_distance", no_matrix)
    gathered = indexed_distances(embeddings, (anchor, positive), (anchor, negative), distance="euclidean")
    for ours, reference in zip(gathered, expected, strict=True):
        torch.testing.assert_close(ours, reference)
    assert torch.autograd.gradcheck(
        lambda x: sum(d.sum() for d in indexed_distances(x, (anchor, positive), (anchor, negative))), embeddings
    )


@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_embeddings_have_finite_gradients(distance: str) -> None:
    x = torch.ones(4, 3, requires_grad=True)
    pairwise_distance(x, distance=distance).sum().backward()
    assert torch.isfinite(x.grad).all()
    y = torch.zeros(3, 3, requires_grad=True)  # zero vectors: the worst case for norms and cosine
    (pairwise_distance(y, distance=distance).sum() + pairwise_distance(y, y, distance=distance).sum()).backward()
    assert torch.isfinite(y.grad).all()
    z = torch.ones(3, 3, requires_grad=True)
    paired_distance(z, z.detach().clone(), distance=distance).sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("distance", DISTANCES)
def test_gradcheck(distance: str) -> None:
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distance(a, b, distance=distance), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: paired_distance(a, b[:1].expand(5, 3), distance=distance), (x, y))


def test_unknown_name_lists_options_and_suggests() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'cosine'\?.*euclidean, squared_euclidean, cosine"):
        pairwise_distance(torch.zeros(2, 2), distance="cosin")
    with pytest.raises(ValueError, match=r"^triplet: unknown `distance` 'manhattan'\. Available"):
        check_distance("manhattan", owner="triplet")
