"""False-negative masks against brute-force loops over the texts, and combined with InfoNCE's mask."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrasent.data.text_ids import text_ids
from contrasent.losses import InfoNCE
from contrasent.losses.masks import (
    false_negative_mask,
    infonce_candidate_ids,
    similarity_threshold_mask,
)

# Row 1 repeats row 0's positive; row 2's anchor is row 3's positive; row 4 shares row 0's anchor;
# row 3's first negative equals row 0's positive; row 2's second negative is its own anchor.
ANCHORS = ["q0", "q1", "q2", "q3", "q0"]
POSITIVES = ["d0", "d0", "d2", "q2", "d4"]
NEGATIVES = [["n0", "n1"], ["n2", "n3"], ["n4", "q2"], ["d0", "n5"], ["n6", "n7"]]


def brute_force_mask(anchors, positives, negatives):
    batch = len(anchors)
    candidates = list(positives) + [text for row in negatives for text in row]
    mask = torch.zeros(batch, len(candidates), dtype=torch.bool)
    for i in range(batch):
        for c, text in enumerate(candidates):
            if c == i:
                continue
            same_anchor_positive = c < batch and anchors[c] == anchors[i]
            mask[i, c] = text in (positives[i], anchors[i]) or same_anchor_positive
    return mask


def ids(texts):
    return text_ids(texts)


def negative_ids():
    return torch.stack([ids(row) for row in NEGATIVES])


def test_mask_removes_exactly_the_duplicates():
    mask = false_negative_mask(ids(ANCHORS), ids(POSITIVES), negative_ids())
    expected = brute_force_mask(ANCHORS, POSITIVES, NEGATIVES)
    assert torch.equal(mask, expected)
    # Spot checks of the cases in the fixture, in InfoNCE's column order (B = 5, k = 2).
    assert mask[0, 1] and mask[1, 0]  # duplicate positive d0
    assert mask[2, 3]  # row 3's positive is row 2's anchor
    assert mask[0, 4] and mask[4, 0]  # same anchor q0: each other's positive is relevant
    assert mask[0, 5 + 3 * 2] and mask[1, 5 + 3 * 2]  # row 3's negative d0
    assert mask[2, 5 + 2 * 2 + 1]  # row 2's negative is its own anchor
    assert not mask.diagonal().any()
    assert mask.sum() == expected.sum() == 9


def test_mask_without_negatives_and_with_one_negative_per_row():
    assert torch.equal(
        false_negative_mask(ids(ANCHORS), ids(POSITIVES)), brute_force_mask(ANCHORS, POSITIVES, [[]] * 5)
    )
    one = [[row[0]] for row in NEGATIVES]
    got = false_negative_mask(ids(ANCHORS), ids(POSITIVES), ids([row[0] for row in NEGATIVES]))
    assert torch.equal(got, brute_force_mask(ANCHORS, POSITIVES, one))


def test_candidate_ids_follow_infonce_column_order():
    order = infonce_candidate_ids(ids(POSITIVES), negative_ids())
    assert order.tolist() == ids(POSITIVES + [t for row in NEGATIVES for t in row]).tolist()


def test_masked_infonce_equals_softmax_over_the_kept_candidates():
    torch.manual_seed(0)
    a, p, n = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64), None
    n = torch.randn(5, 2, 4, dtype=torch.float64)
    mask = false_negative_mask(ids(ANCHORS), ids(POSITIVES), negative_ids())
    tau = 0.1
    got = InfoNCE(temperature=tau)(a, p, n, mask=mask)
    candidates = torch.cat([p, n.flatten(0, 1)])
    rows = []
    for i in range(5):
        kept = [c for c in range(candidates.shape[0]) if not mask[i, c]]
        logits = [F.cosine_similarity(a[i], candidates[c], dim=0).item() / tau for c in kept]
        target = F.cosine_similarity(a[i], p[i], dim=0).item() / tau
        rows.append(math.log(sum(math.exp(x) for x in logits)) - target)
    assert got.item() == pytest.approx(sum(rows) / 5, abs=1e-10)


def test_similarity_threshold_mask_against_a_loop():
    torch.manual_seed(1)
    a, p, n = torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 2, 3)
    candidates = torch.cat([p, n.flatten(0, 1)])
    for margin, relative in ((0.0, None), (0.3, None), (None, 0.2), (0.1, 0.5)):
        mask = similarity_threshold_mask(a, p, n, margin=margin, relative_margin=relative)
        for i in range(6):
            positive = F.cosine_similarity(a[i], p[i], dim=0).item()
            for c in range(candidates.shape[0]):
                score = F.cosine_similarity(a[i], candidates[c], dim=0).item()
                masked = (margin is not None and score > positive - margin + 1e-6) or (
                    relative is not None and score > positive * (1 - relative) + 1e-6
                )
                kept = (margin is None or score < positive - margin - 1e-6) and (
                    relative is None or score < positive * (1 - relative) - 1e-6
                )
                if c == i:
                    assert not mask[i, c]
                elif masked:
                    assert mask[i, c], (margin, relative, i, c)
                elif kept:
                    assert not mask[i, c], (margin, relative, i, c)


def test_similarity_threshold_mask_keeps_gradients_out_and_checks_arguments():
    a = torch.randn(3, 4, requires_grad=True)
    mask = similarity_threshold_mask(a, torch.randn(3, 4))
    assert mask.dtype == torch.bool and mask.shape == (3, 3) and not mask.requires_grad
    with pytest.raises(ValueError, match="margin must be >= 0"):
        similarity_threshold_mask(a, a, margin=-1.0)
    with pytest.raises(ValueError, match="both are None"):
        similarity_threshold_mask(a, a, margin=None)
    with pytest.raises(ValueError, match="anchor_ids and positive_ids"):
        false_negative_mask(torch.arange(3), torch.arange(2))
