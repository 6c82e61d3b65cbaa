"""Distance-margin objectives: contrastive (Hadsell et al.), triplet with in-batch mining, lifted structure."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .reduction import label_masks, masked_logsumexp, zero_loss
from .similarity import DISTANCES, paired_distance, pairwise_distance, upcast
from .validation import (
    check_choice,
    check_embeddings,
    check_labels,
    check_negatives,
    check_non_negative,
    check_positive,
    check_same_shape,
)


class MarginContrastive(nn.Module):
    r"""Contrastive loss with margins (Hadsell, Chopra & LeCun 2006), for labelled pairs.

    .. math::
        \ell_i = y_i\,[d(a_i, b_i) - m_+]_+^{\,q} + (1 - y_i)\,[m_- - d(a_i, b_i)]_+^{\,q},
        \qquad L = \frac1B \sum_i \ell_i

    with :math:`q = 2` if ``squared`` else 1. Similar pairs are pulled closer than :math:`m_+` (0: all the
    way, the original loss; > 0: the "positive margin" variant, which leaves slack for paraphrases),
    dissimilar pairs pushed beyond :math:`m_-`.

    Args:
        pos_margin: :math:`m_+ \ge 0` (default 0.0).
        neg_margin: :math:`m_- > 0` (default 1.0).
        distance: ``"euclidean"`` (default) or ``"cosine"`` (1 − cos).
        squared: square the hinges (default True, as in the paper).

    Call: ``loss(a, b, label)`` with a, b (B, d) and label (B,) integer/bool, 1 similar and 0 dissimilar.
    Returns a scalar.

    Reference: Hadsell et al. 2006, "Dimensionality Reduction by Learning an Invariant Mapping".
    """

    input_format: ClassVar[str] = "pair_label"

    def __init__(
        self,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        distance: str = "euclidean",
        squared: bool = True,
    ) -> None:
        super().__init__()
        self.pos_margin = check_non_negative("pos_margin", pos_margin)
        self.neg_margin = check_positive("neg_margin", neg_margin)
        self.distance = check_choice("distance", distance, ("euclidean", "cosine"))
        self.squared = squared

    def forward(self, a: Tensor, b: Tensor, label: Tensor) -> Tensor:
        check_same_shape("a", a, "b", b)
        similar = check_labels("label", label, a.shape[0], binary=True).to(a.device, torch.bool)
        d = paired_distance(*upcast(a, b), self.distance)
        hinge = torch.where(similar, F.relu(d - self.pos_margin), F.relu(self.neg_margin - d))
        return (hinge.pow(2) if self.squared else hinge).mean()


class Triplet(nn.Module):
    r"""Triplet margin loss, on explicit triplets or mined from a labelled batch.

    .. math::
        \ell(a, p, n) = [d(a, p) - d(a, n) + m]_+ ,\qquad L = \text{mean of } \ell \text{ over the selected triplets}

    Mining (``T`` = all triplets with :math:`y_p = y_a`, :math:`p \ne a`, :math:`y_n \ne y_a`):

    - ``"all"`` (default): every triplet of T, easy ones (zero loss) included in the mean;
    - ``"hard"``: those with :math:`d(a, n) < d(a, p)`;
    - ``"semihard"``: those with :math:`d(a, p) < d(a, n) < d(a, p) + m` (FaceNet);
    - ``"batch_hard"``: per anchor, its farthest positive and nearest negative (Hermans et al.); the mean
      is over anchors that have both.

    Comparisons are strict, so ties belong to neither "hard" nor "semihard". When mining selects nothing
    the loss is 0 (silently: late in training that is normal); when the batch has no valid triplet at all
    (no anchor with both a positive and a negative) it is 0 with a warning. "all", "hard" and
    "semihard" build a (B, B, B) tensor: memory is cubic in the batch.

    Args:
        margin: m ≥ 0 (default 1.0).
        distance: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"`` (1 − cos).
        mining: ``"all"``, ``"hard"``, ``"semihard"`` or ``"batch_hard"``.

    Call:

    - ``loss(embeddings, labels)``: embeddings (B, d), labels (B,) integer; triplets are mined in the batch.
    - ``loss(anchors, positives, negatives)``: explicit triplets, anchors and positives (B, d), negatives
      (B, d) or (B, k, d) (k triplets per anchor); "all", "hard" and "semihard" filter them,
      "batch_hard" needs labels.

    Returns a scalar. References: Weinberger & Saul 2009 (LMNN); Schroff et al. 2015, "FaceNet";
    Hermans et al. 2017, "In Defense of the Triplet Loss for Person Re-Identification".
    """

    input_format: ClassVar[str] = "labels"
    MINING: ClassVar[tuple[str, ...]] = ("all", "hard", "semihard", "batch_hard")

    def __init__(self, margin: float = 1.0, distance: str = "euclidean", mining: str = "all") -> None:
        super().__init__()
        self.margin = check_non_negative("margin", margin)
        self.distance = check_choice("distance", distance, DISTANCES)
        self.mining = check_choice("mining", mining, self.MINING)

    def forward(self, embeddings: Tensor, labels: Tensor, negatives: Tensor | None = None) -> Tensor:
        if negatives is not None:
            return self._explicit(embeddings, labels, negatives)
        check_embeddings("embeddings", embeddings)
        check_labels("labels", labels, embeddings.shape[0])
        (x,) = upcast(embeddings)
        d = pairwise_distance(x, x, self.distance)
        positive, negative = label_masks(labels.to(x.device))
        valid = positive.any(1) & negative.any(1)
        if not valid.any():
            return zero_loss(x, "Triplet", "no anchor has both a positive and a negative")
        if self.mining == "batch_hard":
            d, positive, negative = d[valid], positive[valid], negative[valid]
            hardest_positive = d.masked_fill(~positive, float("-inf")).amax(1)
            hardest_negative = d.masked_fill(~negative, float("inf")).amin(1)
            return F.relu(hardest_positive - hardest_negative + self.margin).mean()
        d_ap, d_an = d[:, :, None], d[:, None, :]
        return self._reduce(d_ap, d_an, positive[:, :, None] & negative[:, None, :])

    def _explicit(self, anchors: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
        if self.mining == "batch_hard":
            raise ValueError("mining='batch_hard' needs (embeddings, labels); got explicit triplets")
        check_same_shape("anchors", anchors, "positives", positives)
        negatives = check_negatives(negatives, anchors)
        anchors, positives, negatives = upcast(anchors, positives, negatives)
        d_ap = paired_distance(anchors, positives, self.distance)[:, None]
        d_an = paired_distance(anchors[:, None, :], negatives, self.distance)
        if d_an.numel() == 0:
            return zero_loss(anchors, "Triplet", "negatives has k=0 negatives per anchor")
        return self._reduce(d_ap, d_an, torch.ones_like(d_an, dtype=torch.bool))

    def _reduce(self, d_ap: Tensor, d_an: Tensor, valid: Tensor) -> Tensor:
        """Mean hinge over the ``valid`` triplets that the mining keeps (``d_ap``, ``d_an`` broadcast)."""
        if self.mining == "hard":
            valid = valid & (d_an < d_ap)
        elif self.mining == "semihard":
            valid = valid & (d_ap < d_an) & (d_an < d_ap + self.margin)
        hinge = F.relu(d_ap - d_an + self.margin).expand(valid.shape)[valid]
        return hinge.mean() if hinge.numel() else (d_ap.sum() + d_an.sum()) * 0.0


class LiftedStructure(nn.Module):
    r"""Lifted structured embedding loss with the LogSumExp-smoothed hardest negative (Song et al. 2016).

    For every positive pair :math:`(i, j) \in P` (same label, :math:`i < j`) and :math:`N(i)` the
    examples with a label other than i's,

    .. math::
        J_{ij} = \log\Big(\sum_{k \in N(i)} e^{m - D_{ik}} + \sum_{l \in N(j)} e^{m - D_{jl}}\Big) + D_{ij},
        \qquad L = \frac{1}{2|P|} \sum_{(i, j) \in P} [J_{ij}]_+^2

    with D the Euclidean distance. A batch with no positive pair or no negative (all labels equal) gives
    0 with a warning.

    Args:
        margin: m ≥ 0 (default 1.0).
        distance: ``"euclidean"`` (default, the paper's), ``"squared_euclidean"`` or ``"cosine"``.

    Call: ``loss(embeddings, labels)`` with embeddings (B, d) and labels (B,) integer. Returns a scalar.

    Reference: Song et al. 2016, "Deep Metric Learning via Lifted Structured Feature Embedding".
    """

    input_format: ClassVar[str] = "labels"

    def __init__(self, margin: float = 1.0, distance: str = "euclidean") -> None:
        super().__init__()
        self.margin = check_non_negative("margin", margin)
        self.distance = check_choice("distance", distance, DISTANCES)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings("embeddings", embeddings)
        check_labels("labels", labels, embeddings.shape[0])
        (x,) = upcast(embeddings)
        positive, negative = label_masks(labels.to(x.device))
        pairs = positive.triu(1)
        # With two labels or more every row has a negative; with one, none has (and the sums are empty).
        if not pairs.any() or not negative.any():
            return zero_loss(x, "LiftedStructure", "no positive pair with negatives")
        d = pairwise_distance(x, x, self.distance)
        negative_lse = masked_logsumexp(self.margin - d, negative, dim=1)
        j = torch.logaddexp(negative_lse[:, None], negative_lse[None, :]) + d
        return F.relu(j[pairs]).pow(2).mean() / 2
