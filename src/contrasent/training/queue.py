r"""A MoCo-style negative queue and momentum encoder, for losses that take ``extra_candidates``.

:class:`NegativeQueue` keeps the embeddings (detached, no gradient) of the positives and hard negatives
of the last few batches, first in first out; a loss that accepts ``extra_candidates`` (InfoNCE)
scores every anchor against them as extra negatives, so the number of negatives grows beyond the batch
at the cost of one (B, Q) matrix product. Entries carry their text ids, so a queued copy of a row's own
positive or anchor is masked like an in-batch duplicate.

Queued embeddings were computed by an older version of the encoder; MoCo keeps them consistent by
encoding positives and queue entries with :class:`MomentumEncoder`, an exponential moving average of
the encoder that changes slowly:

.. math:: \theta_m \leftarrow m\,\theta_m + (1 - m)\,\theta

References: He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation Learning";
Wu et al. 2022, "ESimCSE: Enhanced Sample Building Method for Contrastive Learning of Unsupervised
Sentence Embedding".
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from contrasent.data.batch import Batch


class NegativeQueue:
    """FIFO memory of the last ``size`` embeddings (d,) and their int64 text ids.

    Args:
        size: capacity Q ≥ 1; the oldest entries are overwritten first.

    ``enqueue(embeddings (n, d), ids (n,))`` stores detached copies (the last ``size`` when n > size);
    :attr:`embeddings` (q, d) and :attr:`ids` (q,) are the q ≤ Q stored entries, oldest first.
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        self.size = size
        self._embeddings: Tensor | None = None
        self._ids: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self._ids is None else self._ids.shape[0]

    @property
    def embeddings(self) -> Tensor | None:
        return self._embeddings

    @property
    def ids(self) -> Tensor | None:
        return self._ids

    def state_dict(self) -> dict[str, Tensor]:
        """The stored entries, ``{"embeddings": (q, d), "ids": (q,)}``; empty before the first :meth:`enqueue`."""
        return {} if self._ids is None else {"embeddings": self._embeddings, "ids": self._ids}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Replace the entries by those of :meth:`state_dict` (the last ``size`` of them)."""
        self._embeddings = self._ids = None
        if state:
            self.enqueue(state["embeddings"], state["ids"])

    @torch.no_grad()
    def enqueue(self, embeddings: Tensor, ids: Tensor) -> None:
        if embeddings.ndim != 2 or ids.shape != embeddings.shape[:1]:
            raise ValueError(
                f"embeddings must be (n, d) and ids (n,), got {tuple(embeddings.shape)} and {tuple(ids.shape)}"
            )
        embeddings, ids = embeddings.detach(), ids.to(embeddings.device)
        if self._embeddings is not None:
            embeddings = torch.cat([self._embeddings, embeddings])
            ids = torch.cat([self._ids, ids])
        # A concatenation instead of a ring buffer: Q·d floats per step is negligible next to a forward pass.
        self._embeddings, self._ids = embeddings[-self.size :].clone(), ids[-self.size :].clone()


class MomentumEncoder(nn.Module):
    """A detached exponential-moving-average copy of an encoder (MoCo's key encoder).

    Args:
        encoder: the encoder being trained; copied (weights and buffers) at construction.
        momentum: m in [0, 1): after each optimizer step, :meth:`update` sets
            :math:`\\theta_m \\leftarrow m\\,\\theta_m + (1 - m)\\,\\theta` for every parameter.

    Encodes in eval mode (no dropout) without gradients: its embeddings are targets, not trained, and
    drawing no random numbers keeps gradient caching's dropout replay exact.
    """

    def __init__(self, encoder: nn.Module, momentum: float) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.encoder = copy.deepcopy(encoder).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, encoder: nn.Module) -> None:
        """One EMA step towards ``encoder``'s current parameters."""
        for ema, current in zip(self.encoder.parameters(), encoder.parameters(), strict=True):
            ema.mul_(self.momentum).add_(current.detach().to(ema.device), alpha=1 - self.momentum)

    @torch.no_grad()
    def forward(self, batch: Batch) -> Tensor:
        """(n, d) embeddings of every text present in ``batch``, in view-major order (no missing hard negative)."""
        self.encoder.eval()
        return torch.cat([self.encoder(**chunk) for chunk in batch.chunks])[batch.restore]
