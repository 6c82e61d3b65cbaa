"""The shared similarity/distance functions against per-pair loops, and their safe corners."""

from __future__ import annotations

import pytest
import torch
from loss_reference import dist, rand, sim

from contrasent.losses.similarity import (
    DISTANCES,
    SIMILARITIES,
    paired_distance,
    paired_similarity,
    pairwise_distance,
    pairwise_similarity,
    safe_sqrt,
    upcast,
)

COMPARISONS = [(pairwise_similarity, paired_similarity, sim, kind) for kind in SIMILARITIES] + [
    (pairwise_distance, paired_distance, dist, kind) for kind in DISTANCES
]


@pytest.mark.parametrize(("pairwise", "paired", "one_pair", "kind"), COMPARISONS)
def test_comparisons_match_loop(pairwise, paired, one_pair, kind):
    x, y = rand(3, 5, seed=0).detach(), rand(4, 5, seed=1).detach()
    expected = torch.stack([torch.stack([one_pair(xi, yj, kind) for yj in y]) for xi in x])
    torch.testing.assert_close(pairwise(x, y, kind), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(paired(x, y[:3], kind), expected.diagonal())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_euclidean_distance_of_identical_rows_is_zero_with_zero_gradient(dtype):
    x = torch.randn(3, 16, dtype=dtype).mul(10).requires_grad_()
    d = pairwise_distance(x, x, "euclidean")
    assert torch.equal(d.diagonal(), torch.zeros(3, dtype=dtype))
    (grad,) = torch.autograd.grad(d.diagonal().sum(), x)
    assert not grad.any()


def test_safe_sqrt_gradient_at_zero():
    x = torch.tensor([0.0, 4.0], requires_grad=True)
    (grad,) = torch.autograd.grad(safe_sqrt(x).sum(), x)
    assert grad.tolist() == [0.0, 0.25]


def test_upcast_to_at_least_float32():
    half, single, double = (
        torch.ones(1, dtype=torch.bfloat16),
        torch.ones(1),
        torch.ones(1, dtype=torch.float64),
    )
    assert [t.dtype for t in upcast(half, half)] == [torch.float32] * 2
    assert [t.dtype for t in upcast(half, double)] == [torch.float64] * 2
    assert upcast(single)[0].dtype == torch.float32
