r"""Matryoshka representation learning: any loss, on nested prefixes of the embeddings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .similarity import upcast

# How many leading positional arguments of each input format are embeddings (the rest: labels, scores),
# and the keyword inputs that are embeddings (see contrasent.losses for the formats).
EMBEDDING_ARGUMENTS: dict[str, int] = {
    "anchor_positive": 3,  # anchors, positives, negatives (or None)
    "views": 2,
    "labels": 1,
    "pair_label": 2,
    "scored_pairs": 2,
}
EMBEDDING_KEYWORDS = frozenset({"extra_candidates"})


def check_dims(dims: Sequence[int], weights: Sequence[float] | None) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``dims`` and ``weights`` (default: all 1) sorted by decreasing dimension, or a ``ValueError``.

    The dimensions must be distinct positive integers (their order does not matter: the loss is a sum);
    the weights, one per dimension, finite and > 0.
    """
    dims = list(dims)
    if not dims:
        raise ValueError("dims must hold at least one dimension")
    if any(isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0 for dim in dims):
        raise ValueError(f"dims must be positive integers, got {dims}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims must not repeat a dimension, got {dims}")
    weights = [1.0] * len(dims) if weights is None else [float(weight) for weight in weights]
    if len(weights) != len(dims):
        raise ValueError(f"weights must hold one weight per dimension ({len(dims)}), got {len(weights)}: {weights}")
    if not all(math.isfinite(weight) and weight > 0 for weight in weights):
        raise ValueError(f"weights must be finite and > 0, got {weights}")
    ordered = sorted(zip(dims, weights), key=lambda pair: -pair[0])
    return tuple(dim for dim, _ in ordered), tuple(weight for _, weight in ordered)


def prefix(embeddings: Tensor | None, dim: int) -> Tensor | None:
    """The first ``dim`` components of ``embeddings`` (..., d), L2-normalised (at least float32); ``None`` stays."""
    if embeddings is None:
        return None
    if dim > embeddings.shape[-1]:
        raise ValueError(f"dims: {dim} is more than the {embeddings.shape[-1]} dimensions of the embeddings")
    (embeddings,) = upcast(embeddings)  # normalising in bf16 would cost the loss its precision
    return F.normalize(embeddings[..., :dim], dim=-1)


class Matryoshka(nn.Module):
    r"""A loss summed over nested prefixes of every embedding (Matryoshka Representation Learning).

    For dimensions :math:`m_1 > m_2 > \dots` with weights :math:`w_m`, and a loss :math:`L` of embeddings
    :math:`x` (anchors, positives, negatives, extra candidates such as a queue, …),

    .. math::
        L_\text{MRL} = \sum_m w_m \, L\big(\operatorname{norm}(x_{:m})\big),
        \qquad \operatorname{norm}(v) = v / \max(\lVert v \rVert_2, 10^{-12})

    the first :math:`m` components of every embedding input, L2-normalised, as
    sentence-transformers' ``MatryoshkaLoss`` does (whatever the loss's similarity: a prefix is then what
    a truncated embedding is at inference, truncated and re-normalised; for a cosine loss the
    normalisation changes nothing). Labels, scores and masks are passed unchanged to every term (a
    false-negative mask is thus the one built from the full embeddings).

    Because the result is a plain function of the embeddings, gathering across devices, gradient caching
    (whose cached gradient is that of the whole sum) and the negative queue (full embeddings, cut per
    term) work unchanged.

    Args:
        loss: any loss of :mod:`contrasent.losses` (or one with an ``input_format``); its
            ``input_format``, ``optional_inputs`` and ``similarity`` are this module's.
        dims: distinct positive dimensions, e.g. ``(768, 512, 256, 128, 64)``; any order (kept in
            decreasing order). Each must be at most the embedding size (checked at the call).
        weights: one weight > 0 per dimension, in the order of ``dims`` (default all 1).

    Call: as ``loss``. Returns the weighted sum (not the mean) over the dimensions, a scalar.

    Reference: Kusupati et al. 2022, "Matryoshka Representation Learning".
    """

    def __init__(self, loss: nn.Module, dims: Sequence[int], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        input_format = getattr(loss, "input_format", None)
        if input_format not in EMBEDDING_ARGUMENTS:
            raise ValueError(f"loss {type(loss).__name__} has input_format {input_format!r}; Matryoshka knows "
                             f"{', '.join(EMBEDDING_ARGUMENTS)}")
        self.loss = loss
        self.dims, self.weights = check_dims(dims, weights)
        self.input_format = input_format
        self.optional_inputs = frozenset(getattr(loss, "optional_inputs", ()))
        if hasattr(loss, "similarity"):  # the step builds similarity-threshold masks with it
            self.similarity = loss.similarity

    def forward(self, *inputs: Any, **keywords: Any) -> Tensor:
        count = EMBEDDING_ARGUMENTS[self.input_format]
        total = None
        for dim, weight in zip(self.dims, self.weights):
            arguments = [prefix(x, dim) for x in inputs[:count]] + list(inputs[count:])
            options = {name: prefix(value, dim) if name in EMBEDDING_KEYWORDS else value
                       for name, value in keywords.items()}
            term = weight * self.loss(*arguments, **options)
            total = term if total is None else total + term
        return total
