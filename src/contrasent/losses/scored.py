"""Objectives for pairs with a graded similarity score (STS-style data): CoSENT."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .similarity import paired_similarity, upcast
from .validation import check_choice, check_positive, check_same_shape, check_scores


class CoSENT(nn.Module):
    r"""CoSENT: rank the pairs' similarities in the order of their gold scores.

    With :math:`c_k = \lambda\, s(a_k, b_k)` (λ = ``scale``) and gold scores :math:`y`,

    .. math::
        L = \log\Big(1 + \sum_{(i, j):\ y_i > y_j} \exp(c_j - c_i)\Big)

    a single log-sum-exp over the batch (so it is not a mean over rows): it penalises every pair ranked
    below a pair with a lower gold score. Only the order of the scores matters; tied scores contribute
    nothing, and a batch whose scores are all equal gives 0.

    Args:
        scale: λ > 0 (default 20.0, i.e. temperature 0.05).
        similarity: ``"cosine"`` (default) or ``"dot"``.

    Call: ``loss(a, b, score)`` with a, b (B, d) and score (B,) real (e.g. STS-B's 0–5). Returns a scalar.

    Reference: Su 2022, "CoSENT: a more efficient sentence vector scheme than Sentence-BERT"
    (https://kexue.fm/archives/8847).
    """

    input_format: ClassVar[str] = "scored_pairs"

    def __init__(self, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.scale = check_positive("scale", scale)
        self.similarity = check_choice("similarity", similarity, ("cosine", "dot"))

    def forward(self, a: Tensor, b: Tensor, score: Tensor) -> Tensor:
        check_same_shape("a", a, "b", b)
        check_scores("score", score, a.shape[0])
        c = paired_similarity(*upcast(a, b), self.similarity) * self.scale
        ranked_wrong = c[None, :] - c[:, None]
        score = score.to(c.device)
        ordered = score[:, None] > score[None, :]
        return torch.logsumexp(torch.cat([c.new_zeros(1), ranked_wrong[ordered]]), dim=0)
