"""Representation-quality metrics on the unit hypersphere: alignment and uniformity (Wang & Isola 2020).

Both L2-normalise their inputs first (the metrics are defined on the sphere) and return a scalar tensor
that still carries gradients, so it can be logged with ``.item()`` or used as a loss. Lower is better
for both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from contrasent.losses.similarity import pairwise_similarity, upcast
from contrasent.losses.validation import check_embeddings, check_positive, check_same_shape


def alignment(anchors: Tensor, positives: Tensor, alpha: float = 2.0) -> Tensor:
    r"""Alignment: how close positive pairs are, :math:`\frac1B \sum_i \lVert f(x_i) - f(y_i) \rVert_2^{\alpha}`.

    Args:
        anchors, positives: (B, d), row i a positive pair; normalised here.
        alpha: α > 0 (default 2, the paper's).

    Returns a scalar in [0, 2^α]; float32 for bf16/fp16/float32 inputs.
    """
    check_same_shape("anchors", anchors, "positives", positives)
    alpha = check_positive("alpha", alpha)
    x, y = (F.normalize(t, dim=-1) for t in upcast(anchors, positives))
    return (x - y).norm(dim=-1).pow(alpha).mean()


def uniformity(embeddings: Tensor, t: float = 2.0) -> Tensor:
    r"""Uniformity: :math:`\log \frac{2}{B(B-1)} \sum_{i<j} \exp(-t \lVert f(x_i) - f(x_j) \rVert_2^2)`.

    Computed as a log-sum-exp (no underflow for spread-out embeddings), with
    :math:`\lVert f(x_i) - f(x_j) \rVert^2 = 2 - 2\cos(x_i, x_j)` on the sphere.

    Args:
        embeddings: (B, d) with B ≥ 2; normalised here.
        t: t > 0 (default 2, the paper's).

    Returns a scalar in [−4t, 0]; float32 for bf16/fp16/float32 inputs.
    """
    check_embeddings("embeddings", embeddings)
    t = check_positive("t", t)
    batch = embeddings.shape[0]
    if batch < 2:
        raise ValueError(
            f"embeddings must hold at least 2 rows for uniformity, got shape {tuple(embeddings.shape)}"
        )
    (x,) = upcast(embeddings)
    squared = 2.0 - 2.0 * pairwise_similarity(x, x, "cosine")
    upper = torch.triu_indices(batch, batch, offset=1, device=x.device)
    pairs = squared[upper[0], upper[1]]
    return torch.logsumexp(-t * pairs, dim=0) - math.log(pairs.numel())
