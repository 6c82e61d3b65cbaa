"""InfoNCE, NTXent and NPair against explicit loops over anchors and candidates, in float64."""

from __future__ import annotations

import pytest
import torch
from loss_reference import assert_matches, candidates, lse, mean, rand, sim

from contrasent.losses import InfoNCE, NPair, NTXent


def reference_infonce(a, p, n, tau, alpha=0.0, symmetric=False, mask=None, kind="cosine"):
    batch = a.shape[0]
    rows = []
    for i in range(batch):
        logits = []
        for c, (candidate, owner) in enumerate(candidates(p, n)):
            if mask is not None and c != i and mask[i, c]:
                continue
            logits.append(sim(a[i], candidate, kind) / tau + (alpha if owner == i else 0.0))
        rows.append(lse(logits) - sim(a[i], p[i], kind) / tau)
    loss = mean(rows)
    if symmetric:
        back = []
        for j in range(batch):
            logits = [
                sim(p[j], a[i], kind) / tau for i in range(batch) if i == j or mask is None or not mask[i, j]
            ]
            back.append(lse(logits) - sim(p[j], a[j], kind) / tau)
        loss = (loss + mean(back)) / 2
    return loss


# (B, k): k=None means no negatives, k=-1 negatives given as (B, d).
SHAPES = [(1, None), (1, 2), (4, None), (4, -1), (4, 0), (3, 3)]


def _inputs(batch, k, d=5, seed=0):
    a, p = rand(batch, d, seed=seed), rand(batch, d, seed=seed + 1)
    if k is None:
        return a, p, None
    n = rand(batch, d, seed=seed + 2) if k == -1 else rand(batch, k, d, seed=seed + 2)
    return a, p, n


@pytest.mark.parametrize(("batch", "k"), SHAPES)
@pytest.mark.parametrize("kind", ["cosine", "dot", "squared_euclidean"])
def test_infonce_matches_loop(batch, k, kind):
    a, p, n = _inputs(batch, k)
    loss = InfoNCE(temperature=0.1, similarity=kind)(a, p, n)
    n3 = None if n is None else n.reshape(batch, -1, a.shape[1])
    inputs = [t for t in (a, p, n) if t is not None]
    assert_matches(loss, reference_infonce(a, p, n3, 0.1, kind=kind), inputs)


@pytest.mark.parametrize(("batch", "k"), [(1, 2), (4, -1), (3, 3), (4, None)])
def test_infonce_symmetric_and_hard_negative_weight(batch, k):
    a, p, n = _inputs(batch, k, seed=3)
    loss = InfoNCE(temperature=0.05, symmetric=True, hard_negative_weight=0.7)(a, p, n)
    n3 = None if n is None else n.reshape(batch, -1, a.shape[1])
    inputs = [t for t in (a, p, n) if t is not None]
    assert_matches(loss, reference_infonce(a, p, n3, 0.05, alpha=0.7, symmetric=True), inputs)


@pytest.mark.parametrize("symmetric", [False, True])
def test_infonce_mask_removes_candidates_but_never_the_target(symmetric):
    a, p, n = _inputs(4, 2, seed=5)
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 12, generator=generator) < 0.4
    mask[0, 0] = mask[2, 2] = True  # target columns: must be ignored
    loss = InfoNCE(temperature=0.1, symmetric=symmetric, hard_negative_weight=0.3)(a, p, n, mask=mask)
    reference = reference_infonce(a, p, n, 0.1, alpha=0.3, symmetric=symmetric, mask=mask)
    assert_matches(loss, reference, [a, p, n])


def test_infonce_full_mask_leaves_only_the_target():
    a, p, n = _inputs(3, 1, seed=6)
    loss = InfoNCE()(a, p, n, mask=torch.ones(3, 6, dtype=torch.bool))
    assert loss.item() == 0.0


def test_infonce_gradcheck():
    a, p, n = _inputs(3, 2, d=4, seed=7)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[1, 4] = True
    loss = InfoNCE(temperature=0.2, symmetric=True, hard_negative_weight=0.5)
    assert torch.autograd.gradcheck(lambda *x: loss(*x, mask=mask), (a, p, n))


def reference_ntxent(v1, v2, tau, kind="cosine"):
    z = torch.cat([v1, v2])
    size = z.shape[0]
    rows = []
    for i in range(size):
        partner = (i + size // 2) % size
        logits = [sim(z[i], z[j], kind) / tau for j in range(size) if j != i]
        rows.append(lse(logits) - sim(z[i], z[partner], kind) / tau)
    return mean(rows)


@pytest.mark.parametrize("batch", [1, 2, 5])
@pytest.mark.parametrize("kind", ["cosine", "dot"])
def test_ntxent_matches_loop(batch, kind):
    v1, v2 = rand(batch, 6, seed=10), rand(batch, 6, seed=11)
    loss = NTXent(temperature=0.5, similarity=kind)(v1, v2)
    assert_matches(loss, reference_ntxent(v1, v2, 0.5, kind), [v1, v2])


def test_ntxent_gradcheck():
    v1, v2 = rand(3, 4, seed=12), rand(3, 4, seed=13)
    assert torch.autograd.gradcheck(NTXent(temperature=0.3), (v1, v2))


def reference_npair(a, p, n, l2):
    rows = []
    for i in range(a.shape[0]):
        terms = [torch.exp(a[i] @ c - a[i] @ p[i]) for col, (c, _) in enumerate(candidates(p, n)) if col != i]
        others = sum(terms, a.new_zeros(()))
        rows.append(torch.log(1 + others) + l2 * (a[i] @ a[i] + p[i] @ p[i]))
    return mean(rows)


@pytest.mark.parametrize(("batch", "k"), [(1, None), (4, None), (3, 2), (3, 0)])
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_npair_matches_loop(batch, k, l2):
    a, p, n = _inputs(batch, k, seed=20)
    loss = NPair(l2_weight=l2)(a, p, n)
    inputs = [t for t in (a, p, n) if t is not None]
    assert_matches(loss, reference_npair(a, p, n, l2), inputs)


def test_npair_gradcheck():
    a, p = rand(3, 4, seed=21), rand(3, 4, seed=22)
    assert torch.autograd.gradcheck(NPair(l2_weight=0.1), (a, p))


def reference_infonce_with_extra(a, p, n, q, tau, alpha, mask):
    """InfoNCE where every row also scores the shared candidates q (Q, d), appended after the negatives."""
    rows = []
    columns = candidates(p, n) + [(q[m], None) for m in range(q.shape[0])]
    for i in range(a.shape[0]):
        logits = [
            sim(a[i], candidate) / tau + (alpha if owner == i else 0.0)
            for c, (candidate, owner) in enumerate(columns)
            if c == i or mask is None or not mask[i, c]
        ]
        rows.append(lse(logits) - sim(a[i], p[i]) / tau)
    return mean(rows)


@pytest.mark.parametrize(("batch", "k", "queued"), [(3, None, 4), (3, 2, 4), (4, -1, 1), (2, 2, 0)])
@pytest.mark.parametrize("masked", [False, True])
def test_infonce_extra_candidates_match_loop(batch, k, queued, masked):
    a, p, n = _inputs(batch, k)
    q = rand(queued, 5, seed=9)
    negatives_per_row = 0 if n is None else (1 if n.ndim == 2 else n.shape[1])
    columns = batch + batch * negatives_per_row + queued
    mask = torch.rand(batch, columns, generator=torch.Generator().manual_seed(3)) < 0.3 if masked else None
    loss = InfoNCE(temperature=0.1, hard_negative_weight=0.5)(a, p, n, mask=mask, extra_candidates=q)
    n3 = None if n is None else (n[:, None] if n.ndim == 2 else n)
    expected = reference_infonce_with_extra(a, p, n3, q, 0.1, 0.5, mask)
    assert_matches(loss, expected, [a, p, q] + ([n] if n is not None else []))


def test_infonce_extra_candidates_shape_is_checked():
    a, p, _ = _inputs(2, None)
    with pytest.raises(ValueError, match="extra_candidates"):
        InfoNCE()(a, p, extra_candidates=torch.zeros(3, 4, dtype=torch.float64))
