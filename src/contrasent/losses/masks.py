r"""Masks of suspected false negatives for :class:`~contrasent.losses.InfoNCE`'s ``mask`` argument.

InfoNCE's candidates for a batch of B anchors with k hard negatives each are C = B + B·k columns:
the B positives, then the negatives row by row (row j's negatives are the columns
``B + j·k … B + j·k + k − 1``). Both masks here are bool (B, C) in that order, True = remove the
candidate from row i's softmax; the target column (i, i) is always False. Combine them with ``|``.

- :func:`false_negative_mask`: exact duplicates, by text id (:func:`~contrasent.data.text_ids.text_ids`).
- :func:`similarity_threshold_mask`: candidates that score too close to (or above) the positive, the
  GISTEmbed / NV-Retriever "TopK-MarginPos" / "TopK-PercPos" rules.

Under cross-device gathering build both from the *gathered* ids / embeddings (the global batch).
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrasent.losses.infonce import candidate_logits
from contrasent.losses.similarity import SIMILARITIES
from contrasent.losses.validation import check_choice, check_non_negative


def infonce_candidate_ids(positive_ids: Tensor, negative_ids: Tensor | None = None) -> Tensor:
    """Text ids of InfoNCE's candidate columns (C,): ``positive_ids`` (B,), then ``negative_ids`` (B, k)
    row by row."""
    if negative_ids is None:
        return positive_ids
    if negative_ids.ndim == 1:
        negative_ids = negative_ids[:, None]
    if negative_ids.ndim != 2 or negative_ids.shape[0] != positive_ids.shape[0]:
        raise ValueError(
            f"negative_ids must have shape (B,) or (B, k) with B={positive_ids.shape[0]}, "
            f"got {tuple(negative_ids.shape)}"
        )
    return torch.cat([positive_ids, negative_ids.flatten()])


def false_negative_mask(anchor_ids: Tensor, positive_ids: Tensor, negative_ids: Tensor | None = None) -> Tensor:
    """(B, C) bool: candidate c is a duplicate that must not count as a negative for anchor i.

    Candidate c (text id :math:`t_c`, columns as in :func:`infonce_candidate_ids`) is masked for row i,
    c ≠ i, when

    - :math:`t_c` = row i's positive text (a duplicate positive, or a hard negative equal to it), or
    - :math:`t_c` = row i's anchor text (the anchor itself among the candidates), or
    - c < B is row j's positive and row j has the same anchor as row i (an anchor with several labelled
      positives: p_j is relevant to a_i too).

    Args:
        anchor_ids, positive_ids: (B,) int64 text ids.
        negative_ids: None, (B,) or (B, k) int64 text ids of the hard negatives.
    """
    for name, ids in (("anchor_ids", anchor_ids), ("positive_ids", positive_ids)):
        if not isinstance(ids, Tensor) or ids.ndim != 1:
            raise ValueError(f"{name} must be a 1-D tensor of text ids (B,), got {getattr(ids, 'shape', ids)}")
    if anchor_ids.shape != positive_ids.shape:
        raise ValueError(
            f"anchor_ids and positive_ids must have the same shape (B,), got {tuple(anchor_ids.shape)} "
            f"and {tuple(positive_ids.shape)}"
        )
    batch = anchor_ids.shape[0]
    candidate_ids = infonce_candidate_ids(positive_ids, negative_ids).to(anchor_ids.device)
    mask = (candidate_ids[None, :] == positive_ids[:, None]) | (candidate_ids[None, :] == anchor_ids[:, None])
    mask[:, :batch] |= anchor_ids[:, None] == anchor_ids[None, :]
    return _keep_targets(mask)


def similarity_threshold_mask(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor | None = None,
    *,
    margin: float | None = 0.0,
    relative_margin: float | None = None,
    similarity: str = "cosine",
) -> Tensor:
    r"""(B, C) bool: candidates scoring too close to the positive, as suspected false negatives.

    With :math:`s` the similarity of anchor i to candidate c and :math:`s^+_i = s(a_i, p_i)`, candidate
    c ≠ i is masked when

    - ``margin`` m (absolute, "TopK-MarginPos"): :math:`s > s^+_i - m`;
    - ``relative_margin`` r ("TopK-PercPos"): :math:`s > s^+_i (1 - r)`;

    either rule masks (so a kept candidate satisfies both given rules). Computed without gradients.
    The embeddings may come from the model being trained or from a separate guide model (GISTEmbed).

    Args:
        anchors, positives: (B, d). negatives: None, (B, d) or (B, k, d).
        margin: m ≥ 0, or None for no absolute rule (default 0.0: mask candidates above the positive).
        relative_margin: r ≥ 0, or None (default) for no relative rule.
        similarity: ``"cosine"`` (default), ``"dot"`` or ``"squared_euclidean"``.

    References: Solatorio 2024, "GISTEmbed: Guided In-sample Selection of Training Negatives";
    Moreira et al. 2024, "NV-Retriever: Improving text embedding models with effective hard-negative
    mining".
    """
    check_choice("similarity", similarity, SIMILARITIES)
    if margin is None and relative_margin is None:
        raise ValueError("give margin and/or relative_margin; both are None")
    for name, value in (("margin", margin), ("relative_margin", relative_margin)):
        if value is not None:
            check_non_negative(name, value)
    with torch.no_grad():
        # InfoNCE's own candidate columns, at temperature 1: the scores themselves.
        scores, _ = candidate_logits(anchors, positives, negatives, similarity, 1.0)
        rows = torch.arange(scores.shape[0], device=scores.device)
        positive_scores = scores[rows, rows][:, None]  # the same numbers as the columns they are compared to
        mask = torch.zeros_like(scores, dtype=torch.bool)
        if margin is not None:
            mask |= scores > positive_scores - margin
        if relative_margin is not None:
            mask |= scores > positive_scores * (1 - relative_margin)
    return _keep_targets(mask)


def _keep_targets(mask: Tensor) -> Tensor:
    """Clear the target column (i, i) of every row: the positive is never masked."""
    rows = torch.arange(mask.shape[0], device=mask.device)
    mask[rows, rows] = False
    return mask
