"""Supervised softmax objectives over a labelled batch: SupCon and the soft nearest neighbour loss."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .reduction import label_masks, masked_logsumexp, mean_over_valid
from .similarity import SIMILARITIES, pairwise_similarity, upcast
from .validation import check_choice, check_embeddings, check_labels, check_positive


def _anchor_rows(
    embeddings: Tensor, labels: Tensor, similarity: str, temperature: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Logits, positive mask and candidate mask A(i) (all but i) of the anchors that have a positive.

    Returns ``(logits, positive, candidates, x)`` for the valid rows only (so no softmax is ever over an
    empty set), and the upcast embeddings ``x`` to build a zero loss from when no row is valid.
    """
    check_embeddings("embeddings", embeddings)
    check_labels("labels", labels, embeddings.shape[0])
    (x,) = upcast(embeddings)
    logits = pairwise_similarity(x, x, similarity) / temperature
    positive, _ = label_masks(labels.to(x.device))
    candidates = ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    valid = positive.any(1)
    return logits[valid], positive[valid], candidates[valid], x


class SupCon(nn.Module):
    r"""Supervised contrastive loss :math:`\mathcal{L}^{sup}_{out}` (Khosla et al. 2020).

    With :math:`P(i)` the other examples sharing i's label and :math:`A(i)` all examples but i,

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
                 \log \frac{\exp(s(z_i, z_p)/\tau)}{\sum_{a \in A(i)} \exp(s(z_i, z_a)/\tau)},
        \qquad L = \frac{1}{|I'|} \sum_{i \in I'} \ell_i

    where :math:`I'` are the anchors with at least one positive: an anchor whose label appears once is
    skipped; a batch with none gives 0 with a warning. Views of one example share a label, so
    unsupervised SimCLR-style batches fit too.

    Args:
        temperature: τ > 0 (default 0.1).
        similarity: ``"cosine"`` (default, the paper's normalised embeddings), ``"dot"`` or
            ``"squared_euclidean"``.

    Call: ``loss(embeddings, labels)`` with embeddings (B, d) and labels (B,) integer. Returns a scalar.

    Reference: Khosla et al. 2020, "Supervised Contrastive Learning".
    """

    input_format: ClassVar[str] = "labels"

    def __init__(self, temperature: float = 0.1, similarity: str = "cosine") -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        logits, positive, candidates, x = _anchor_rows(embeddings, labels, self.similarity, self.temperature)
        log_prob = logits.masked_fill(~candidates, float("-inf")).log_softmax(dim=1)
        per_anchor = -torch.where(positive, log_prob, 0.0).sum(1) / positive.sum(1)
        return mean_over_valid(per_anchor, x, "SupCon")


class SoftNearestNeighbors(nn.Module):
    r"""Soft nearest neighbour loss (Frosst, Papernot & Hinton 2019).

    .. math::
        \ell_i = -\log \frac{\sum_{j \ne i,\ y_j = y_i} \exp(s(x_i, x_j)/T)}{\sum_{k \ne i} \exp(s(x_i, x_k)/T)},
        \qquad L = \frac{1}{|I'|} \sum_{i \in I'} \ell_i

    with :math:`s = -\lVert x_i - x_j \rVert^2` by default: the log-probability that a soft nearest
    neighbour of :math:`x_i` shares its label, with any number of positives per anchor. Unlike SupCon
    the positives' probabilities are summed before the log. Anchors with no positive (:math:`I'` excludes
    them) are skipped; a batch with none gives 0 with a warning.

    Args:
        temperature: T > 0 (default 1.0).
        similarity: ``"squared_euclidean"`` (default, the paper's), ``"cosine"`` or ``"dot"``.

    Call: ``loss(embeddings, labels)`` with embeddings (B, d) and labels (B,) integer. Returns a scalar.

    Reference: Frosst et al. 2019, "Analyzing and Improving Representations with the Soft Nearest
    Neighbor Loss".
    """

    input_format: ClassVar[str] = "labels"

    def __init__(self, temperature: float = 1.0, similarity: str = "squared_euclidean") -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        logits, positive, candidates, x = _anchor_rows(embeddings, labels, self.similarity, self.temperature)
        per_anchor = masked_logsumexp(logits, candidates) - masked_logsumexp(logits, positive)
        return mean_over_valid(per_anchor, x, "SoftNearestNeighbors")
