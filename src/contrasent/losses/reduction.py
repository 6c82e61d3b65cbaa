"""Label masks and numerically safe reductions shared by the losses."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def masked_logsumexp(x: Tensor, keep: Tensor, dim: int = -1) -> Tensor:
    """``log Σ exp(x)`` over the entries where ``keep`` is True.

    Every slice along ``dim`` must keep at least one entry: an empty sum is ``−inf`` and its gradient NaN,
    so callers select the rows that have something to sum before calling this.
    """
    return torch.logsumexp(x.masked_fill(~keep, float("-inf")), dim=dim)


def zero_loss(like: Tensor, owner: str, reason: str) -> Tensor:
    """A zero scalar still attached to ``like``'s graph (so ``backward()`` works), with a warning."""
    warnings.warn(f"{owner}: {reason}; the loss is 0 for this batch", RuntimeWarning, stacklevel=3)
    return like.sum() * 0.0


def mean_over_valid(values: Tensor, like: Tensor, owner: str) -> Tensor:
    """Mean of the per-anchor ``values``; zero with a warning when no anchor was valid (never NaN)."""
    if values.numel() == 0:
        return zero_loss(
            like, owner, "no anchor in the batch has both a positive and the candidates it needs"
        )
    return values.mean()


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(B, B) bool masks ``(positive, negative)``: same label but not the row itself, and other label."""
    same = labels[:, None] == labels[None, :]
    itself = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~itself, ~same
