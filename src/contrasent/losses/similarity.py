"""Similarities and distances shared by every loss, and the dtype the losses compute in.

Two shapes of comparison are used throughout:

- *pairwise*: ``x`` (N, d) against ``y`` (M, d) gives an (N, M) matrix, entry ``[i, j]`` compares
  ``x[i]`` with ``y[j]``;
- *paired*: ``x`` (..., d) against ``y`` (..., d) (broadcast) compares row with row and drops the last
  dimension.

Similarities (larger = closer): ``"cosine"`` ``x·y / (‖x‖ ‖y‖)``, ``"dot"`` ``x·y`` and
``"squared_euclidean"`` ``−‖x − y‖²``. Distances (smaller = closer): ``"euclidean"`` ``‖x − y‖``,
``"squared_euclidean"`` ``‖x − y‖²`` and ``"cosine"`` ``1 − cos(x, y)``.
"""

from __future__ import annotations

from functools import reduce
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

Similarity = Literal["cosine", "dot", "squared_euclidean"]
Distance = Literal["euclidean", "squared_euclidean", "cosine"]
SIMILARITIES: tuple[str, ...] = get_args(Similarity)
DISTANCES: tuple[str, ...] = get_args(Distance)


def upcast(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Cast ``tensors`` to their common dtype, at least float32.

    bf16/fp16 inputs are computed in float32 (exp and log-sum-exp lose too much in 8 mantissa bits, and
    the loss is returned in float32); float64 inputs stay float64 so the reference tests are exact.
    """
    dtype = reduce(torch.promote_types, (t.dtype for t in tensors), torch.float32)
    return tuple(t.to(dtype) for t in tensors)


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` with a zero gradient at ``x = 0`` instead of an infinite one (identical embeddings)."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), 0.0)


def _pairwise_squared_euclidean(x: Tensor, y: Tensor) -> Tensor:
    x_sq = x.pow(2).sum(-1)
    y_sq = y.pow(2).sum(-1)
    scale = x_sq[:, None] + y_sq[None, :]
    squared = scale - 2.0 * x @ y.T
    # The Gram form cancels ~eps·scale of precision; anything below that is a rounding error on a zero
    # distance, and keeping it would give identical embeddings a huge, arbitrary gradient through sqrt.
    return torch.where(squared > 4 * torch.finfo(squared.dtype).eps * scale, squared, 0.0)


def pairwise_similarity(x: Tensor, y: Tensor, kind: str = "cosine") -> Tensor:
    """Similarity of every row of ``x`` (N, d) with every row of ``y`` (M, d): an (N, M) matrix."""
    if kind == "cosine":
        return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T
    if kind == "dot":
        return x @ y.T
    if kind == "squared_euclidean":
        return -_pairwise_squared_euclidean(x, y)
    raise ValueError(f"similarity must be one of {SIMILARITIES}, got {kind!r}")


def paired_similarity(x: Tensor, y: Tensor, kind: str = "cosine") -> Tensor:
    """Similarity of ``x[..., :]`` with ``y[..., :]`` (broadcast over leading dimensions)."""
    if kind == "cosine":
        return (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(-1)
    if kind == "dot":
        return (x * y).sum(-1)
    if kind == "squared_euclidean":
        return -(x - y).pow(2).sum(-1)
    raise ValueError(f"similarity must be one of {SIMILARITIES}, got {kind!r}")


def pairwise_distance(x: Tensor, y: Tensor, kind: str = "euclidean") -> Tensor:
    """Distance of every row of ``x`` (N, d) to every row of ``y`` (M, d): an (N, M) matrix."""
    if kind == "euclidean":
        return safe_sqrt(_pairwise_squared_euclidean(x, y))
    if kind == "squared_euclidean":
        return _pairwise_squared_euclidean(x, y)
    if kind == "cosine":
        return 1.0 - pairwise_similarity(x, y, "cosine")
    raise ValueError(f"distance must be one of {DISTANCES}, got {kind!r}")


def paired_distance(x: Tensor, y: Tensor, kind: str = "euclidean") -> Tensor:
    """Distance of ``x[..., :]`` to ``y[..., :]`` (broadcast over leading dimensions)."""
    if kind == "euclidean":
        return safe_sqrt((x - y).pow(2).sum(-1))
    if kind == "squared_euclidean":
        return (x - y).pow(2).sum(-1)
    if kind == "cosine":
        return 1.0 - paired_similarity(x, y, "cosine")
    raise ValueError(f"distance must be one of {DISTANCES}, got {kind!r}")
