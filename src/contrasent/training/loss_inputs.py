r"""What the step hands a loss: its positional inputs, arranged from the view embeddings, and the optional
inputs it declares (false-negative masks, the negative queue).

A loss declares its call in two class attributes (see :mod:`contrasent.losses`): ``input_format`` picks
one arrange function of :data:`ARRANGE`, which turns the (V, B, d) view embeddings of a batch (view 0 =
the first text column, ...) and the batch's labels or scores into the positional arguments; and
``optional_inputs`` says which of :data:`CANDIDATE_INPUTS` it accepts, which :func:`candidate_inputs`
builds. Nothing here names a loss class: a new loss with one of these formats trains unchanged, and a new
format is one function added to :data:`ARRANGE`.

Rows short of hard negatives (``Batch.negative_valid``): the step hands the loss zeros in the missing
slots, so the shapes stay (B, k, d), and :func:`candidate_inputs` masks their candidate columns for every
row (a row's hard negatives are every other row's in-batch negatives too). A loss that takes the
negatives but no ``mask`` cannot leave them out: :func:`check_missing_negatives` refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from contrasent.data.batch import Batch
from contrasent.losses.masks import false_negative_mask, similarity_threshold_mask
from contrasent.training.queue import NegativeQueue


def anchor_positive(views: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
    """anchors = view 0, positives = view 1, hard negatives = views 2.. as (B, k, d) (``None`` when V = 2)."""
    negatives = views[2:].transpose(0, 1) if views.shape[0] > 2 else None
    return views[0], views[1], negatives


def two_views(views: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
    """(view 0, view 1)."""
    return views[0], views[1]


def labelled_embeddings(views: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
    """(embeddings, labels): view 0 and the label column; for pair data, every view, with row i's anchor
    and positive in class i and each hard negative a class of its own."""
    if batch.class_labels is not None:
        return views[0], batch.class_labels
    num_views, rows = views.shape[0], views.shape[1]
    index = torch.arange(rows, device=views.device)
    labels = [index, index] + [rows * column + index for column in range(1, num_views - 1)]
    return views.reshape(num_views * rows, -1), torch.cat(labels)


def labelled_pairs(views: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, label): views 0 and 1 and the 0/1 label column; for triplets, anchor-positive pairs labelled 1
    and anchor-negative pairs labelled 0."""
    if batch.class_labels is not None:
        return views[0], views[1], batch.class_labels
    num_views, rows = views.shape[0], views.shape[1]
    others = views[1:].reshape((num_views - 1) * rows, -1)
    labels = torch.zeros(others.shape[0], dtype=torch.long, device=views.device)
    labels[:rows] = 1
    return views[0].repeat(num_views - 1, 1), others, labels


def scored_pairs(views: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, score): views 0 and 1 and the score column."""
    if batch.scores is None:
        raise ValueError("a scored_pairs loss needs a score column in the batch")
    return views[0], views[1], batch.scores


Arrange = Callable[[Tensor, Batch], tuple]

# input_format -> how the (V, B, d) views and the batch become the loss's positional arguments.
ARRANGE: dict[str, Arrange] = {
    "anchor_positive": anchor_positive,
    "views": two_views,
    "labels": labelled_embeddings,
    "pair_label": labelled_pairs,
    "scored_pairs": scored_pairs,
}

# Optional keyword inputs the step can build, and the input format whose candidate layout they follow.
CANDIDATE_INPUTS = frozenset({"mask", "extra_candidates"})
CANDIDATE_FORMAT = "anchor_positive"


def arranged_inputs(loss: nn.Module, views: Tensor, batch: Batch) -> tuple:
    """The positional arguments of ``loss`` for the (V, B, d) ``views`` of ``batch``."""
    input_format = getattr(loss, "input_format", None)
    if input_format not in ARRANGE:
        raise ValueError(f"loss {type(loss).__name__} has unknown input_format {input_format!r}; "
                         f"known formats: {', '.join(ARRANGE)}")
    return ARRANGE[input_format](views, batch)


def optional_inputs(loss: nn.Module) -> frozenset[str]:
    """The keyword inputs ``loss`` declares it accepts (its ``optional_inputs``; none by default)."""
    return frozenset(getattr(loss, "optional_inputs", ()))


@dataclass(frozen=True)
class FalseNegativeMasking:
    """Which candidates a ``mask``-accepting loss must not use as negatives.

    Attributes:
        duplicates: texts equal to the row's anchor or positive (by text id), in the batch and the queue.
        margin / relative_margin: candidates scoring above the positive minus this margin, absolute or
            relative (:func:`~contrasent.losses.masks.similarity_threshold_mask`); ``None`` = off.
    """

    duplicates: bool = True
    margin: float | None = None
    relative_margin: float | None = None


def has_missing_negatives(negative_valid: Tensor | None) -> bool:
    """Whether a (B, k) ``Batch.negative_valid`` marks any hard negative as missing."""
    return negative_valid is not None and not bool(negative_valid.all())


def leaves_out_missing_negatives(loss: nn.Module) -> bool:
    """Whether ``loss`` can train on rows short of hard negatives: it uses views 0 and 1 only, or it takes
    the candidates' ``mask`` that leaves the missing ones out. (Only ``pairs`` data, which has no label
    column, can lack a hard negative, so the other formats would all use them.)"""
    input_format = getattr(loss, "input_format", None)
    return input_format == "views" or (input_format == CANDIDATE_FORMAT and "mask" in optional_inputs(loss))


def check_missing_negatives(loss: nn.Module, batch: Batch) -> None:
    """Refuse a batch short of hard negatives for a loss that takes them but cannot mask them out.

    Raises:
        ValueError: naming the hard-negative column (1-based among the negatives) and its rows lacking a text.
    """
    if not has_missing_negatives(batch.negative_valid) or leaves_out_missing_negatives(loss):
        return
    short = (~batch.negative_valid).sum(dim=0)
    column = int(short.nonzero()[0])
    raise ValueError(f"hard-negative column {column + 1} has no text in {int(short[column])} of {len(batch)} rows "
                     f"of this batch; loss {type(loss).__name__} takes hard negatives but no mask to leave the "
                     "missing ones out: use a loss that does (InfoNCE) or drop the rows short of negatives")


def missing_negative_mask(negative_valid: Tensor) -> Tensor:
    """(B, B + B·k) bool: True at every row's column of a missing hard negative, in InfoNCE's candidate
    order (B positives, then the hard negatives row by row): a missing negative of row j is no candidate of
    any row."""
    missing = ~negative_valid.flatten()
    positives = torch.zeros(negative_valid.shape[0], dtype=torch.bool, device=negative_valid.device)
    return torch.cat([positives, missing]).expand(negative_valid.shape[0], -1)


def candidate_inputs(
    loss: nn.Module,
    views: Tensor,
    text_ids: Tensor,
    masking: FalseNegativeMasking,
    queue: NegativeQueue | None = None,
    negative_valid: Tensor | None = None,
) -> dict[str, Tensor]:
    """The ``mask`` and ``extra_candidates`` keyword inputs, for the ones ``loss`` accepts.

    ``views``: (V, B, d) of an ``anchor_positive`` loss; ``text_ids``: (V, B); ``negative_valid``: (B, V−2)
    bool, False at missing hard negatives (``Batch.negative_valid``). ``extra_candidates`` is the queue's
    (Q, d) embeddings when it holds any. ``mask`` is (B, B + B·(V−2) + Q) in the candidate order
    positives, hard negatives row by row, queue: duplicates by text id and/or candidates scoring too close
    to the positive, queued copies of the row's anchor or positive (with ``duplicates`` on), and the
    missing hard negatives (always).
    """
    accepted = optional_inputs(loss)
    inputs: dict[str, Tensor] = {}
    queued = queue is not None and len(queue) > 0 and "extra_candidates" in accepted
    if queued:
        inputs["extra_candidates"] = queue.embeddings
    if "mask" not in accepted:
        return inputs
    mask = None
    if masking.duplicates:
        mask = false_negative_mask(text_ids[0], text_ids[1], text_ids[2:].T if views.shape[0] > 2 else None)
    if masking.margin is not None or masking.relative_margin is not None:
        negatives = views[2:].transpose(0, 1) if views.shape[0] > 2 else None
        suspects = similarity_threshold_mask(
            views[0], views[1], negatives, margin=masking.margin, relative_margin=masking.relative_margin,
            similarity=getattr(loss, "similarity", "cosine"),
        )
        mask = suspects if mask is None else mask | suspects
    if has_missing_negatives(negative_valid):
        missing = missing_negative_mask(negative_valid.to(views.device))
        mask = missing if mask is None else mask | missing
    if queued and mask is not None:
        queue_ids = queue.ids.to(mask.device)
        duplicates = (queue_ids[None, :] == text_ids[0][:, None]) | (queue_ids[None, :] == text_ids[1][:, None])
        mask = torch.cat([mask, duplicates & masking.duplicates], dim=1)
    if mask is not None:
        inputs["mask"] = mask
    return inputs
