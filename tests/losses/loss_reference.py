"""Naive float64 building blocks for the loss oracles: one pair at a time, no vectorisation.

The reference losses in the test modules loop over anchors, pairs and triplets explicitly and call these
per-vector functions, so that they share no code with the library beyond ``torch`` arithmetic.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rand(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """A leaf tensor of standard normal entries that requires grad."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype).requires_grad_()


def sim(x: Tensor, y: Tensor, kind: str = "cosine") -> Tensor:
    """Similarity of two vectors."""
    if kind == "cosine":
        return (x * y).sum() / (x.pow(2).sum().sqrt() * y.pow(2).sum().sqrt())
    if kind == "dot":
        return (x * y).sum()
    assert kind == "squared_euclidean"
    return -(x - y).pow(2).sum()


def dist(x: Tensor, y: Tensor, kind: str = "euclidean") -> Tensor:
    """Distance between two vectors."""
    if kind == "euclidean":
        return torch.linalg.vector_norm(x - y)  # its gradient at 0 is 0, like the library's
    if kind == "squared_euclidean":
        return (x - y).pow(2).sum()
    assert kind == "cosine"
    return 1 - sim(x, y, "cosine")


def candidates(p: Tensor, n: Tensor | None) -> list[tuple[Tensor, int | None]]:
    """In-batch candidates in the loss's column order: (vector, owner row for a hard negative else None)."""
    batch = p.shape[0]
    columns = [(p[j], None) for j in range(batch)]
    if n is not None:
        columns += [(n[j, m], j) for j in range(batch) for m in range(n.shape[1])]
    return columns


def lse(values: list[Tensor]) -> Tensor:
    """log Σ exp over a Python list of scalars, shifted by the max."""
    top = max(v.detach() for v in values)
    return top + torch.log(sum(torch.exp(v - top) for v in values))


def log_sigmoid(x: Tensor) -> Tensor:
    """log σ(x), written out stably: −log(1 + e^{−x}) = min(x, 0) − log(1 + e^{−|x|})."""
    return torch.clamp(x, max=0) - torch.log1p(torch.exp(-x.abs()))


def assert_matches(loss: Tensor, reference: Tensor, inputs: list[Tensor]) -> None:
    """Values equal to 1e-6 relative and gradients w.r.t. every input equal to 1e-6 relative."""
    torch.testing.assert_close(loss, reference.to(loss.dtype), rtol=1e-6, atol=1e-10)
    got = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
    want = torch.autograd.grad(reference, inputs, allow_unused=True)
    for x, g, w in zip(inputs, got, want, strict=True):
        g = torch.zeros_like(x) if g is None else g
        w = torch.zeros_like(x) if w is None else w
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-9)


def mean(values: list[Tensor]) -> Tensor:
    """Arithmetic mean of a non-empty list of scalars."""
    return sum(values) / len(values)
