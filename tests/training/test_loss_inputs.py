"""How the step calls a loss: one arrange function per ``input_format``, and the optional inputs a loss
declares (masks, the queue) go to any loss that declares them and to no other."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from contrasent.data.batch import Batch
from contrasent.losses import LOSSES, InfoNCE
from contrasent.training import ContrastiveStep
from contrasent.training.loss_inputs import ARRANGE, FalseNegativeMasking, arranged_inputs, candidate_inputs
from contrasent.training.queue import NegativeQueue
from contrasent.training.setup import check_optional_inputs

V, B, D = 3, 2, 4


def batch(**fields) -> Batch:
    """A (V=3, B=2) batch whose row 1's positive repeats row 0's (text id 10)."""
    return Batch(chunks=[], restore=torch.arange(V * B), num_views=V,
                 text_ids=torch.tensor([[1, 2], [10, 10], [20, 21]]), **fields)


def test_every_registered_loss_has_an_arrangement():
    assert {loss.input_format for loss in LOSSES.values()} <= set(ARRANGE)


def test_arrangements_of_a_triplet_batch():
    views = torch.randn(V, B, D)
    anchors, positives, negatives = ARRANGE["anchor_positive"](views, batch())
    assert torch.equal(anchors, views[0]) and torch.equal(positives, views[1])
    assert torch.equal(negatives, views[2:].transpose(0, 1))  # (B, k=1, d)
    assert ARRANGE["anchor_positive"](views[:2], batch())[2] is None
    embeddings, labels = ARRANGE["labels"](views, batch())
    assert torch.equal(embeddings, views.reshape(V * B, D))
    assert labels.tolist() == [0, 1, 0, 1, 2, 3]  # anchor and positive share the row's class; negatives alone
    a, b, pair_labels = ARRANGE["pair_label"](views, batch())
    assert torch.equal(a, torch.cat([views[0], views[0]])) and torch.equal(b, torch.cat([views[1], views[2]]))
    assert pair_labels.tolist() == [1, 1, 0, 0]
    first, second = ARRANGE["views"](views, batch())
    assert torch.equal(first, views[0]) and torch.equal(second, views[1])


def test_arrangements_with_label_and_score_columns():
    views = torch.randn(2, B, D)
    labels = torch.tensor([1, 0])
    assert ARRANGE["labels"](views, batch(class_labels=labels))[1] is labels
    assert ARRANGE["pair_label"](views, batch(class_labels=labels))[2] is labels
    scores = torch.tensor([0.5, 4.0])
    assert ARRANGE["scored_pairs"](views, batch(scores=scores))[2] is scores
    with pytest.raises(ValueError, match="score column"):
        ARRANGE["scored_pairs"](views, batch())


def test_unknown_input_format_is_named():
    class Odd(nn.Module):
        input_format = "triples_of_views"

    with pytest.raises(ValueError, match="loss Odd has unknown input_format 'triples_of_views'"):
        arranged_inputs(Odd(), torch.randn(V, B, D), batch())


class MaskOnly(nn.Module):
    """A new loss: InfoNCE's call without the queue; nothing else in the code base knows it."""

    input_format: ClassVar[str] = "anchor_positive"
    optional_inputs: ClassVar[frozenset[str]] = frozenset({"mask"})

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[torch.Tensor] = []

    def forward(self, anchors, positives, negatives=None, *, mask=None):
        self.masks.append(mask)
        return InfoNCE()(anchors, positives, negatives, mask=mask)


def test_optional_inputs_go_to_the_losses_that_declare_them():
    views = torch.randn(V, B, D)
    queue = NegativeQueue(4)
    queue.enqueue(torch.randn(2, D), torch.tensor([2, 99]))  # row 1's anchor, another text
    both = candidate_inputs(InfoNCE(), views, batch().text_ids, FalseNegativeMasking(), queue)
    assert set(both) == {"mask", "extra_candidates"} and both["mask"].shape == (B, B + B + 2)
    assert both["mask"][:, B:].tolist() == [[False, False, False, False], [False, False, True, False]]
    assert both["mask"][0, 1]  # row 1's positive duplicates row 0's: not a negative of row 0
    assert set(candidate_inputs(MaskOnly(), views, batch().text_ids, FalseNegativeMasking(), queue)) == {"mask"}
    assert candidate_inputs(LOSSES["npair"](), views, batch().text_ids, FalseNegativeMasking(), queue) == {}
    off = FalseNegativeMasking(duplicates=False)
    assert candidate_inputs(MaskOnly(), views, batch().text_ids, off) == {}


def test_a_new_loss_trains_through_the_step_with_its_declared_inputs():
    loss = MaskOnly()
    step = ContrastiveStep(loss)
    embeddings = torch.randn(V * B, D, requires_grad=True)
    value = step.loss_from_embeddings(embeddings, batch())
    value.backward()
    assert embeddings.grad is not None and len(loss.masks) == 1 and loss.masks[0][0, 1]


def test_declared_inputs_the_step_cannot_build_are_refused():
    class Unknown(MaskOnly):
        optional_inputs = frozenset({"mask", "temperatures"})

    class LabelsWithMask(MaskOnly):
        input_format = "labels"

    with pytest.raises(ValueError, match=r"declares optional inputs \['temperatures'\]"):
        check_optional_inputs(Unknown())
    with pytest.raises(ValueError, match="which the step builds for 'anchor_positive' losses only"):
        check_optional_inputs(LabelsWithMask())
    check_optional_inputs(InfoNCE())
    check_optional_inputs(MaskOnly())
