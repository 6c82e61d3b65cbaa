"""Softmax cross-entropy over in-batch candidates: InfoNCE (SimCSE / MNRL), NT-Xent (SimCLR), N-pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .similarity import SIMILARITIES, pairwise_similarity, upcast
from .validation import check_choice, check_negatives, check_non_negative, check_positive, check_same_shape


def candidate_logits(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor | None,
    similarity: str,
    temperature: float,
    extra_candidates: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Logits (B, C) of every anchor against all positives then all negatives, and negatives as (B, k, d).

    Column order: ``positives[0..B-1]``, then ``negatives[0, 0..k-1]``, ``negatives[1, 0..k-1]``, … so
    row ``i``'s own hard negatives are the columns ``B + i·k … B + i·k + k − 1``; then the Q
    ``extra_candidates`` (Q, d) shared by every row, if given (C = B + B·k + Q). Inputs are validated
    and upcast (at least float32).
    """
    check_same_shape("anchors", anchors, "positives", positives)
    negatives = check_negatives(negatives, anchors)
    parts = [positives] if negatives is None else [positives, negatives.flatten(0, 1)]
    if extra_candidates is not None:
        if extra_candidates.ndim != 2 or extra_candidates.shape[1] != anchors.shape[-1]:
            raise ValueError(
                f"extra_candidates must have shape (Q, {anchors.shape[-1]}), got {tuple(extra_candidates.shape)}"
            )
        parts.append(extra_candidates)
    anchors, *parts = upcast(anchors, *parts)
    if negatives is not None:
        negatives = parts[1].view(negatives.shape)
    candidates = parts[0] if len(parts) == 1 else torch.cat(parts)
    return pairwise_similarity(anchors, candidates, similarity) / temperature, negatives


# InfoNCE's score blocks, named as sentence-transformers' MultipleNegativesRankingLoss ``directions``.
DIRECTIONS: tuple[str, ...] = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")


def check_directions(directions: Sequence[str]) -> tuple[str, ...]:
    """``directions`` as a tuple: distinct names of :data:`DIRECTIONS`, ``"query_to_doc"`` among them."""
    if isinstance(directions, str) or not isinstance(directions, Sequence):
        raise TypeError(f"directions must be a sequence of names from {DIRECTIONS}, got {directions!r}")
    unknown = [name for name in directions if name not in DIRECTIONS]
    if unknown:
        raise ValueError(f"directions must be names from {DIRECTIONS}, got {unknown}")
    if "query_to_doc" not in directions:
        raise ValueError(f"directions must include 'query_to_doc' (it holds the positive pair), got {directions}")
    if len(set(directions)) != len(directions):
        raise ValueError(f"directions must not repeat a name, got {directions}")
    return tuple(directions)


def own_negative_columns(batch: int, k: int, device: torch.device) -> Tensor:
    """(B, B·k) bool: True at row ``i``'s own hard negatives."""
    own = torch.zeros(batch, batch, k, dtype=torch.bool, device=device)
    own[torch.arange(batch, device=device), torch.arange(batch, device=device)] = True
    return own.flatten(1)


class InfoNCE(nn.Module):
    r"""InfoNCE with in-batch negatives (SimCSE, MultipleNegativesRankingLoss, CPC).

    For anchors :math:`a_i`, positives :math:`p_i` and hard negatives :math:`n_{jm}`, with candidates
    :math:`c` = all positives and all negatives of the batch (C = B + B·k columns),

    .. math::
        \ell_i = -\log \frac{\exp(s(a_i, p_i)/\tau)}
                            {\sum_{c \notin M_i} \exp(s(a_i, c)/\tau + \alpha\,[c \in N_i])},
        \qquad L = \frac1B \sum_i \ell_i

    where :math:`N_i` are row i's own hard negatives, :math:`\alpha` = ``hard_negative_weight`` (SimCSE's
    log-weight, added after the temperature) and :math:`M_i` the candidates masked out by ``mask``.
    ``extra_candidates`` (e.g. a MoCo queue of past embeddings) join every row's candidates.
    With ``symmetric=True`` the loss is the average with the positive→anchor direction: each
    :math:`p_j` picks :math:`a_j` among all anchors (negatives do not take part in that direction).

    **GTE's improved contrastive loss** (Li et al. 2023): ``directions`` adds same-type and reversed scores
    to the one denominator of row i (a joint softmax, sentence-transformers' ``partition_mode="joint"``).
    With queries :math:`q = a`, documents :math:`d = p`, all B rows of the (gathered) batch,

    .. math::
        Z_i = \underbrace{\sum_{c} e^{s(q_i, c)/\tau + \alpha[c \in N_i]}}_{\texttt{query\_to\_doc}}
            + \underbrace{\sum_{j \ne i} e^{s(q_i, q_j)/\tau}}_{\texttt{query\_to\_query}}
            + \underbrace{\sum_{j} e^{s(d_i, q_j)/\tau}}_{\texttt{doc\_to\_query}}
            + \underbrace{\sum_{c' \notin D_i} e^{s(d_i, c')/\tau}}_{\texttt{doc\_to\_doc}},
        \qquad \ell_i = \log Z_i - s(q_i, d_i)/\tau

    where :math:`c` runs over the q→d candidates above (positives, hard negatives, extra candidates),
    :math:`c'` over the batch's documents (the B positives and B·k hard negatives, not the extra
    candidates: they have no query and stay plain negatives of the queries) and :math:`D_i` are row i's own
    documents (:math:`d_i` and its hard negatives). The scores added per row: q→q (B), d→q (B, :math:`j = i`
    included: the positive score appears twice, as in the paper's formula and sentence-transformers) and
    d→d (B + B·k). The default ``("query_to_doc",)`` is plain InfoNCE, unchanged.

    ``mask`` in the new blocks, one rule: ``mask[i, j]`` (j < B, "pair j is a false negative of row i")
    removes *pair j* from row i's denominator in every block, i.e. :math:`d_j` (q→d and d→d), :math:`q_j`
    (q→q and d→q); ``mask[i, c]`` on a hard-negative column removes it from both q→d and d→d; ``mask`` on
    extra-candidate columns acts in q→d only. :math:`\alpha` weighs own hard negatives in q→d only (they
    are excluded from d→d).

    Args:
        temperature: τ > 0 (default 0.05, SimCSE's).
        symmetric: also average in the positive→anchor cross-entropy (default False). This is
            sentence-transformers' ``directions=("query_to_doc", "doc_to_query")`` with
            ``partition_mode="per_direction"``; it cannot be combined with ``directions``.
        directions: the score blocks of the joint denominator, from ``("query_to_doc", "query_to_query",
            "doc_to_query", "doc_to_doc")``, ``"query_to_doc"`` required (default: only it). All four
            is GTE's improved contrastive loss.
        hard_negative_weight: α ≥ 0 (default 0.0; SimCSE reports α = 0 as best).
        similarity: ``"cosine"`` (default), ``"dot"`` or ``"squared_euclidean"`` (−‖x − y‖²).

    Call: ``loss(anchors, positives, negatives=None, *, mask=None, extra_candidates=None)``

    - ``anchors``, ``positives``: (B, d); row i of each is a positive pair.
    - ``negatives``: None, (B, d) (one hard negative per anchor) or (B, k, d) (k ≥ 0 per anchor).
    - ``mask``: optional bool (B, C) in the column order above (positives, then negatives row by row);
      True removes candidate ``c`` from row ``i``'s softmax, e.g. a duplicate of row i's text (false
      negative). Entries on row i's own positive (column i) are ignored: the target is never removed.
      In the symmetric direction, ``mask[i, j]`` (j < B) also removes anchor i from positive j's softmax.
    - ``extra_candidates``: optional (Q, d) negatives shared by all rows, the last Q columns (C = B + B·k
      + Q; ``mask`` then covers them too). They do not take part in the symmetric direction.

    Returns a scalar: the mean over the B rows, float32 for bf16/fp16/float32 inputs, float64 for float64.

    References: van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding";
    Li et al. 2023, "Towards General Text Embeddings with Multi-stage Contrastive Learning" (GTE);
    Gao et al. 2021, "SimCSE: Simple Contrastive Learning of Sentence Embeddings"; Henderson et al. 2017,
    "Efficient Natural Language Response Suggestion for Smart Reply".
    """

    input_format: ClassVar[str] = "anchor_positive"
    optional_inputs: ClassVar[frozenset[str]] = frozenset({"mask", "extra_candidates"})

    def __init__(
        self,
        temperature: float = 0.05,
        symmetric: bool = False,
        hard_negative_weight: float = 0.0,
        similarity: str = "cosine",
        directions: Sequence[str] = ("query_to_doc",),
    ) -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.symmetric = symmetric
        self.hard_negative_weight = check_non_negative("hard_negative_weight", hard_negative_weight)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)
        self.directions = check_directions(directions)
        if symmetric and len(self.directions) > 1:
            raise ValueError("symmetric=True averages two separate softmaxes; directions builds one joint softmax: "
                             f"choose one (got directions={self.directions})")

    def forward(
        self,
        anchors: Tensor,
        positives: Tensor,
        negatives: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        extra_candidates: Tensor | None = None,
    ) -> Tensor:
        logits, negatives = candidate_logits(
            anchors, positives, negatives, self.similarity, self.temperature, extra_candidates
        )
        batch, num_candidates = logits.shape
        if self.hard_negative_weight and negatives is not None and negatives.shape[1] > 0:
            own = own_negative_columns(batch, negatives.shape[1], logits.device)
            extra = num_candidates - batch - own.shape[1]
            logits = logits + F.pad(own, (batch, extra)) * self.hard_negative_weight
        exclude = self._check_mask(mask, batch, num_candidates, logits.device)
        targets = torch.arange(batch, device=logits.device)
        if exclude is not None:
            logits = logits.masked_fill(exclude, float("-inf"))
        if len(self.directions) > 1:
            logits = torch.cat([logits, *self._gte_blocks(anchors, positives, negatives, exclude, logits)], dim=1)
        loss = F.cross_entropy(logits, targets)
        if self.symmetric:
            back = pairwise_similarity(*upcast(positives, anchors), self.similarity) / self.temperature
            if exclude is not None:
                back = back.masked_fill(exclude[:, :batch].T, float("-inf"))
            loss = (loss + F.cross_entropy(back, targets)) / 2
        return loss

    def _gte_blocks(
        self, anchors: Tensor, positives: Tensor, negatives: Tensor | None, exclude: Tensor | None,
        query_to_doc: Tensor,
    ) -> list[Tensor]:
        """The logits of the other ``directions`` (B, ·) each, in the order of :data:`DIRECTIONS`, with the
        removed scores at −inf (see the class docstring)."""
        batch = anchors.shape[0]
        queries, documents = (x.to(query_to_doc.dtype) for x in (anchors, positives))
        device = query_to_doc.device
        removed = torch.eye(batch, dtype=torch.bool, device=device)
        pairs = removed if exclude is None else removed | exclude[:, :batch]
        blocks = []
        if "query_to_query" in self.directions:
            blocks.append(self._scores(queries, queries).masked_fill(pairs, float("-inf")))
        if "doc_to_query" in self.directions:
            off_diagonal = pairs & ~removed  # q_i stays: s(d_i, q_i) is the positive pair's score
            blocks.append(self._scores(documents, queries).masked_fill(off_diagonal, float("-inf")))
        if "doc_to_doc" in self.directions:
            if negatives is None or negatives.shape[1] == 0:
                all_documents, own = documents, removed
            else:
                all_documents = torch.cat([documents, negatives.flatten(0, 1).to(documents.dtype)])
                own = torch.cat([removed, own_negative_columns(batch, negatives.shape[1], device)], dim=1)
            if exclude is not None:
                own = own | exclude[:, : all_documents.shape[0]]
            blocks.append(self._scores(documents, all_documents).masked_fill(own, float("-inf")))
        return blocks

    def _scores(self, x: Tensor, y: Tensor) -> Tensor:
        return pairwise_similarity(x, y, self.similarity) / self.temperature

    @staticmethod
    def _check_mask(
        mask: Tensor | None, batch: int, num_candidates: int, device: torch.device
    ) -> Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (batch, num_candidates):
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            dtype = mask.dtype if isinstance(mask, Tensor) else None
            raise ValueError(
                f"mask must be a bool tensor of shape (B, C) = ({batch}, {num_candidates}) "
                f"(B positives + all negatives), got {shape} with dtype {dtype}"
            )
        # The target column stays in every row's softmax, whatever the mask says.
        target = F.pad(torch.eye(batch, dtype=torch.bool, device=device), (0, num_candidates - batch))
        return mask.to(device) & ~target


class NTXent(nn.Module):
    r"""NT-Xent, SimCLR's normalized temperature-scaled cross-entropy over 2N views.

    With :math:`z = [\text{view1}; \text{view2}]` (2N, d) and :math:`\pi(i)` the other view of the same
    example (:math:`i \pm N`),

    .. math::
        \ell_i = -\log \frac{\exp(s(z_i, z_{\pi(i)})/\tau)}{\sum_{j \ne i} \exp(s(z_i, z_j)/\tau)},
        \qquad L = \frac1{2N} \sum_{i=1}^{2N} \ell_i

    Every one of the 2N embeddings is an anchor; its pair is the positive, the other 2N − 2 negatives.

    Args:
        temperature: τ > 0 (default 0.5, SimCLR's).
        similarity: ``"cosine"`` (default, as in the paper), ``"dot"`` or ``"squared_euclidean"``.

    Call: ``loss(view1, view2)`` with both (N, d). Returns the scalar mean over the 2N anchors.

    Reference: Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations".
    """

    input_format: ClassVar[str] = "views"

    def __init__(self, temperature: float = 0.5, similarity: str = "cosine") -> None:
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)

    def forward(self, view1: Tensor, view2: Tensor) -> Tensor:
        check_same_shape("view1", view1, "view2", view2)
        z = torch.cat(upcast(view1, view2))
        n = view1.shape[0]
        logits = pairwise_similarity(z, z, self.similarity) / self.temperature
        self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        targets = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
        return F.cross_entropy(logits.masked_fill(self_pairs, float("-inf")), targets)


class NPair(nn.Module):
    r"""N-pair loss: one positive pair per class, the other classes' positives as negatives.

    .. math::
        L = \frac1B \sum_i \log\Big(1 + \sum_{c \ne p_i} \exp(a_i \cdot c - a_i \cdot p_i)\Big)
            + \lambda\, \frac1B \sum_i (\lVert a_i \rVert^2 + \lVert p_i \rVert^2)

    over the candidates :math:`c` (all positives, plus any given hard negatives), i.e. InfoNCE with the
    dot product and τ = 1, plus the paper's L2 regulariser on the embeddings (the dot product is unbounded,
    so without it the loss falls by scaling embeddings up).

    Args:
        l2_weight: λ ≥ 0 (default 0.0, off).

    Call: ``loss(anchors, positives, negatives=None)`` with anchors, positives (B, d); row i is the pair
    of class i; optional negatives (B, d) or (B, k, d) as in :class:`InfoNCE`. Returns a scalar.

    Reference: Sohn 2016, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective".
    """

    input_format: ClassVar[str] = "anchor_positive"

    def __init__(self, l2_weight: float = 0.0) -> None:
        super().__init__()
        self.l2_weight = check_non_negative("l2_weight", l2_weight)

    def forward(self, anchors: Tensor, positives: Tensor, negatives: Tensor | None = None) -> Tensor:
        logits, _ = candidate_logits(anchors, positives, negatives, "dot", 1.0)
        loss = F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))
        if self.l2_weight:
            anchors, positives = upcast(anchors, positives)
            loss = loss + self.l2_weight * (anchors.pow(2).sum(-1) + positives.pow(2).sum(-1)).mean()
        return loss
