"""Binary (sigmoid) objectives against sampled negatives: word2vec's negative sampling and NCE."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .infonce import candidate_logits, own_negative_columns
from .similarity import SIMILARITIES
from .validation import check_choice, check_embeddings, check_positive


def _check_count(name: str, value: int | None, *, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return value


def sample_in_batch_negatives(batch_size: int, num: int | None, device: torch.device | None = None) -> Tensor:
    """(B, B) bool, True at the in-batch negatives of each row: ``num`` distinct j ≠ i drawn uniformly.

    ``num=None`` (or ``num ≥ B − 1``) takes every other row, with no randomness.
    """
    others = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    if num is None or num >= batch_size - 1:
        return others
    keys = torch.rand(batch_size, batch_size, device=device).masked_fill(~others, 2.0)
    chosen = keys.topk(num, dim=1, largest=False).indices
    return torch.zeros_like(others).scatter_(1, chosen, True)


def draw_noise(log_q: Tensor, batch_size: int, k: int) -> Tensor:
    """(B, k) candidate indices, drawn i.i.d. (with replacement) from the noise distribution ``exp(log_q)``."""
    return torch.multinomial(log_q.exp().expand(batch_size, -1), k, replacement=True)


class NEG(nn.Module):
    r"""Negative sampling (word2vec's NEG): logistic regression of the positive against negatives.

    .. math::
        \ell_i = -\log \sigma(s(a_i, p_i)) - \sum_{n \in N_i} \log \sigma(-s(a_i, n)),
        \qquad L = \frac1B \sum_i \ell_i

    :math:`N_i` is row i's hard negatives when ``negatives`` is given; otherwise ``num_negatives`` of the
    other rows' positives, drawn uniformly without replacement for every call (all B − 1 when
    ``num_negatives`` is None or the batch has fewer). Unlike NCE there is no noise-probability
    correction: NEG does not estimate the normalised density, only good embeddings.

    Args:
        num_negatives: in-batch negatives per anchor, an int ≥ 1 or None (default, all others).
        similarity: ``"dot"`` (default, as in word2vec), ``"cosine"`` or ``"squared_euclidean"``.

    Call: ``loss(anchors, positives, negatives=None)`` with anchors, positives (B, d) and optional
    negatives (B, d) or (B, k, d). Returns a scalar.

    Reference: Mikolov et al. 2013, "Distributed Representations of Words and Phrases and their
    Compositionality".
    """

    input_format: ClassVar[str] = "anchor_positive"

    def __init__(self, num_negatives: int | None = None, similarity: str = "dot") -> None:
        super().__init__()
        self.num_negatives = _check_count("num_negatives", num_negatives, allow_none=True)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)

    def forward(self, anchors: Tensor, positives: Tensor, negatives: Tensor | None = None) -> Tensor:
        logits, negatives = candidate_logits(anchors, positives, negatives, self.similarity, 1.0)
        batch = logits.shape[0]
        if negatives is None:
            chosen = sample_in_batch_negatives(batch, self.num_negatives, logits.device)
        else:
            own = own_negative_columns(batch, negatives.shape[1], logits.device)
            chosen = F.pad(own, (batch, 0))
        negative_term = torch.where(chosen, F.softplus(logits), 0.0).sum(1)
        return (F.softplus(-logits.diagonal()) + negative_term).mean()


class NCE(nn.Module):
    r"""Noise-contrastive estimation: data against k noise samples, as binary logistic regression.

    The model's unnormalised log-density of candidate :math:`x` for anchor :math:`a` is
    :math:`s(a, x)/\tau`; the classifier's logit subtracts the log-odds of noise,
    :math:`h(a, x) = s(a, x)/\tau - \log(k\,q(x))`, and

    .. math::
        \ell_i = -\log \sigma(h(a_i, p_i)) - \sum_{m=1}^{k} \log \sigma(-h(a_i, x_{im})),
        \qquad x_{im} \sim q \text{ i.i.d.}, \qquad L = \frac1B \sum_i \ell_i

    The noise distribution q is over this batch's C candidates (all positives, then all hard negatives,
    in :class:`InfoNCE`'s column order); samples are drawn with replacement at each call and may include
    the anchor's own positive, as NCE prescribes.

    Args:
        noise: ``"uniform"`` (default, q = 1/C) or a 1-D tensor of log-probabilities over the C candidate
            columns (normalised here; its length must equal C at every call).
        k: noise samples per anchor, int ≥ 1 (default 10).
        similarity: ``"dot"`` (default), ``"cosine"`` or ``"squared_euclidean"``.
        temperature: τ > 0 (default 1.0).

    Call: ``loss(anchors, positives, negatives=None)`` with anchors, positives (B, d) and optional
    negatives (B, d) or (B, k', d) that join the candidates. Returns a scalar.

    Reference: Gutmann & Hyvärinen 2010, "Noise-contrastive estimation: A new estimation principle for
    unnormalized statistical models"; Mnih & Teh 2012 (its use for language models).
    """

    input_format: ClassVar[str] = "anchor_positive"

    def __init__(
        self, noise: str | Tensor = "uniform", k: int = 10, similarity: str = "dot", temperature: float = 1.0
    ) -> None:
        super().__init__()
        if isinstance(noise, Tensor):
            check_embeddings("noise", noise, ndim=1)
        else:
            check_choice("noise", noise, ("uniform",))
        self.register_buffer("noise_log_probs", noise if isinstance(noise, Tensor) else None)
        self.k = _check_count("k", k, allow_none=False)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)
        self.temperature = check_positive("temperature", temperature)

    def log_noise(self, num_candidates: int, like: Tensor) -> Tensor:
        """log q over the ``num_candidates`` columns, in ``like``'s dtype and device."""
        if self.noise_log_probs is None:
            return like.new_full((num_candidates,), -math.log(num_candidates))
        if self.noise_log_probs.shape[0] != num_candidates:
            raise ValueError(
                f"noise must hold one log-probability per candidate column (C={num_candidates}), "
                f"got shape {tuple(self.noise_log_probs.shape)}"
            )
        return torch.log_softmax(self.noise_log_probs.to(like), dim=0)

    def forward(self, anchors: Tensor, positives: Tensor, negatives: Tensor | None = None) -> Tensor:
        logits, _ = candidate_logits(anchors, positives, negatives, self.similarity, self.temperature)
        batch, num_candidates = logits.shape
        log_q = self.log_noise(num_candidates, logits)
        samples = draw_noise(log_q, batch, self.k)
        log_kq = math.log(self.k) + log_q
        data_logit = logits.diagonal() - log_kq[:batch]
        noise_logit = logits.gather(1, samples) - log_kq[samples]
        return (F.softplus(-data_logit) + F.softplus(noise_logit).sum(1)).mean()
