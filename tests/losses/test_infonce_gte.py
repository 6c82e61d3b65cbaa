"""InfoNCE's ``directions`` (GTE's improved contrastive loss) against an explicit float64 loop, and against
sentence-transformers' MultipleNegativesRankingLoss with the same directions."""

from __future__ import annotations

import math

import pytest
import torch
from loss_reference import assert_matches, candidates, lse, mean, rand, sim

from contrasent.losses import InfoNCE

GTE = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")


def reference_gte(a, p, n, tau, directions, alpha=0.0, mask=None, extra=None, kind="cosine"):
    """One joint softmax per row i over every score of the chosen directions, written out pair by pair."""
    batch = a.shape[0]
    documents = candidates(p, n)
    extras = [] if extra is None else [(extra[m], None) for m in range(extra.shape[0])]

    def removed(i, c):
        return c != i and mask is not None and bool(mask[i, c])

    rows = []
    for i in range(batch):
        logits = [sim(a[i], candidate, kind) / tau + (alpha if owner == i else 0.0)
                  for c, (candidate, owner) in enumerate(documents + extras) if not removed(i, c)]
        if "query_to_query" in directions:
            logits += [sim(a[i], a[j], kind) / tau for j in range(batch) if j != i and not removed(i, j)]
        if "doc_to_query" in directions:
            logits += [sim(p[i], a[j], kind) / tau for j in range(batch) if not removed(i, j)]
        if "doc_to_doc" in directions:
            logits += [sim(p[i], candidate, kind) / tau for c, (candidate, owner) in enumerate(documents)
                       if c != i and owner != i and not removed(i, c)]
        rows.append(lse(logits) - sim(a[i], p[i], kind) / tau)
    return mean(rows)


def _inputs(batch, k, d=6, seed=0):
    a, p = rand(batch, d, seed=seed), rand(batch, d, seed=seed + 1)
    n = None if k is None else rand(batch, k, d, seed=seed + 2)
    return a, p, n


DIRECTION_SETS = [
    GTE,
    ("query_to_doc", "query_to_query"),
    ("query_to_doc", "doc_to_query"),
    ("query_to_doc", "doc_to_doc"),
    ("doc_to_doc", "query_to_doc", "doc_to_query"),
]


@pytest.mark.parametrize("directions", DIRECTION_SETS)
@pytest.mark.parametrize(("batch", "k"), [(1, None), (4, None), (3, 2), (2, 0), (1, 3)])
def test_directions_match_loop(directions, batch, k):
    a, p, n = _inputs(batch, k)
    loss = InfoNCE(temperature=0.1, directions=directions)(a, p, n)
    assert_matches(loss, reference_gte(a, p, n, 0.1, directions), [t for t in (a, p, n) if t is not None])


@pytest.mark.parametrize("kind", ["dot", "squared_euclidean"])
def test_directions_match_loop_for_every_similarity(kind):
    a, p, n = _inputs(3, 2, seed=4)
    loss = InfoNCE(temperature=0.5, similarity=kind, directions=GTE)(a, p, n)
    assert_matches(loss, reference_gte(a, p, n, 0.5, GTE, kind=kind), [a, p, n])


@pytest.mark.parametrize("directions", DIRECTION_SETS)
@pytest.mark.parametrize(("k", "queued"), [(2, 0), (2, 3), (None, 2)])
def test_directions_with_mask_hard_negative_weight_and_extra_candidates(directions, k, queued):
    batch = 4
    a, p, n = _inputs(batch, k, seed=7)
    extra = rand(queued, 6, seed=11) if queued else None
    columns = batch + batch * (k or 0) + queued
    mask = torch.rand(batch, columns, generator=torch.Generator().manual_seed(2)) < 0.35
    mask[1, 1] = mask[3, 3] = True  # target columns: must be ignored
    loss = InfoNCE(temperature=0.1, hard_negative_weight=0.6, directions=directions)(
        a, p, n, mask=mask, extra_candidates=extra)
    expected = reference_gte(a, p, n, 0.1, directions, alpha=0.6, mask=mask, extra=extra)
    assert_matches(loss, expected, [t for t in (a, p, n, extra) if t is not None])


def test_full_mask_leaves_the_positive_score_twice():
    """Everything masked: q→d keeps the target, d→q keeps s(d_i, q_i), the same score: loss = log 2."""
    a, p, n = _inputs(3, 2, seed=5)
    loss = InfoNCE(directions=GTE)(a, p, n, mask=torch.ones(3, 9, dtype=torch.bool))
    torch.testing.assert_close(loss.item(), math.log(2), rtol=1e-12, atol=1e-12)


def test_default_direction_is_plain_infonce():
    a, p, n = _inputs(4, 2, seed=8)
    plain = InfoNCE(temperature=0.1, hard_negative_weight=0.4)(a, p, n)
    explicit = InfoNCE(temperature=0.1, hard_negative_weight=0.4, directions=["query_to_doc"])(a, p, n)
    assert torch.equal(plain, explicit)


def test_gradcheck():
    a, p, n = _inputs(3, 2, d=4, seed=9)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 2] = mask[2, 5] = True
    loss = InfoNCE(temperature=0.2, hard_negative_weight=0.5, directions=GTE)
    assert torch.autograd.gradcheck(lambda *x: loss(*x, mask=mask), (a, p, n))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"directions": ("query_to_query",)}, "must include 'query_to_doc'"),
        ({"directions": ("query_to_doc", "query_to_documents")}, "names from"),
        ({"directions": ("query_to_doc", "query_to_doc")}, "repeat"),
        ({"directions": GTE, "symmetric": True}, "symmetric=True"),
    ],
)
def test_bad_directions_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InfoNCE(**kwargs)


def test_directions_as_one_string_is_refused():
    with pytest.raises(TypeError, match="directions"):
        InfoNCE(directions="query_to_doc")


@pytest.mark.parametrize("directions", DIRECTION_SETS)
@pytest.mark.parametrize("k", [None, 1, 3])
def test_matches_sentence_transformers(directions, k):
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    a, p, n = _inputs(5, k, d=8, seed=12)
    a, p = a.float(), p.float()
    columns = [a, p] + ([] if n is None else [n[:, m].float() for m in range(k)])
    theirs = st_losses.MultipleNegativesRankingLoss(
        None, scale=20.0, directions=tuple(directions), partition_mode="joint"
    ).compute_loss_from_embeddings(columns, None)
    ours = InfoNCE(temperature=0.05, directions=directions)(a, p, None if n is None else n.float())
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
