"""MarginContrastive, Triplet and LiftedStructure against explicit loops over pairs and triplets."""

from __future__ import annotations

import pytest
import torch
from loss_reference import assert_matches, dist, lse, mean, rand

from contrasent.losses import LiftedStructure, MarginContrastive, Triplet

LABELS = [
    torch.tensor([0]),
    torch.tensor([0, 0, 1, 1, 2, 2]),
    torch.tensor([3, 1, 3, 3, 0, 1, 7]),  # singletons 0 and 7
    torch.tensor([5, 5, 5, 9]),
]


def reference_margin_contrastive(a, b, y, m_pos, m_neg, kind, squared):
    rows = []
    for i in range(a.shape[0]):
        d = dist(a[i], b[i], kind)
        hinge = torch.clamp(d - m_pos, min=0) if y[i] == 1 else torch.clamp(m_neg - d, min=0)
        rows.append(hinge**2 if squared else hinge)
    return mean(rows)


@pytest.mark.parametrize("batch", [1, 6])
@pytest.mark.parametrize(
    ("m_pos", "m_neg", "kind", "squared"),
    [
        (0.0, 1.0, "euclidean", True),
        (0.5, 3.0, "euclidean", False),
        (0.1, 0.8, "cosine", True),
    ],
)
def test_margin_contrastive_matches_loop(batch, m_pos, m_neg, kind, squared):
    a, b = rand(batch, 4, seed=0), rand(batch, 4, seed=1)
    y = torch.arange(batch) % 2
    loss = MarginContrastive(m_pos, m_neg, kind, squared)(a, b, y)
    assert_matches(loss, reference_margin_contrastive(a, b, y, m_pos, m_neg, kind, squared), [a, b])


def test_margin_contrastive_accepts_bool_labels_and_gradchecks():
    a, b = rand(4, 3, seed=2), rand(4, 3, seed=3)
    y = torch.tensor([True, False, True, False])
    assert torch.autograd.gradcheck(lambda *x: MarginContrastive(0.2, 3.0)(*x, y), (a, b))


def keep_triplet(d_ap, d_an, mining, margin):
    if mining == "hard":
        return d_an < d_ap
    if mining == "semihard":
        return d_ap < d_an < d_ap + margin
    return True


def reference_triplet_mined(x, labels, margin, kind, mining):
    batch = x.shape[0]
    hinges = []
    for a in range(batch):
        positives = [p for p in range(batch) if p != a and labels[p] == labels[a]]
        negatives = [n for n in range(batch) if labels[n] != labels[a]]
        if mining == "batch_hard":
            if positives and negatives:
                d_ap = max(dist(x[a], x[p], kind) for p in positives)
                d_an = min(dist(x[a], x[n], kind) for n in negatives)
                hinges.append(torch.clamp(d_ap - d_an + margin, min=0))
            continue
        for p in positives:
            for n in negatives:
                d_ap, d_an = dist(x[a], x[p], kind), dist(x[a], x[n], kind)
                if keep_triplet(d_ap, d_an, mining, margin):
                    hinges.append(torch.clamp(d_ap - d_an + margin, min=0))
    return mean(hinges) if hinges else x.sum() * 0


@pytest.mark.parametrize("labels", LABELS[1:], ids=["pairs", "singletons", "one-negative"])
@pytest.mark.parametrize("mining", Triplet.MINING)
@pytest.mark.parametrize(
    ("kind", "margin"), [("euclidean", 1.0), ("squared_euclidean", 2.0), ("cosine", 0.3)]
)
def test_triplet_mined_matches_loop(labels, mining, kind, margin):
    x = rand(labels.shape[0], 3, seed=4)
    loss = Triplet(margin=margin, distance=kind, mining=mining)(x, labels)
    assert_matches(loss, reference_triplet_mined(x, labels, margin, kind, mining), [x])


def reference_triplet_explicit(a, p, n, margin, kind, mining):
    hinges = []
    for i in range(a.shape[0]):
        for m in range(n.shape[1]):
            d_ap, d_an = dist(a[i], p[i], kind), dist(a[i], n[i, m], kind)
            if keep_triplet(d_ap, d_an, mining, margin):
                hinges.append(torch.clamp(d_ap - d_an + margin, min=0))
    return mean(hinges) if hinges else a.sum() * 0


@pytest.mark.parametrize(("batch", "k"), [(1, 1), (5, 1), (4, 3)])
@pytest.mark.parametrize("mining", ["all", "hard", "semihard"])
def test_triplet_explicit_matches_loop(batch, k, mining):
    a, p, n = rand(batch, 3, seed=5), rand(batch, 3, seed=6), rand(batch, k, 3, seed=7)
    loss = Triplet(margin=1.5, mining=mining)(a, p, n)
    assert_matches(loss, reference_triplet_explicit(a, p, n, 1.5, "euclidean", mining), [a, p, n])


def test_triplet_explicit_accepts_one_negative_per_anchor_as_2d():
    a, p, n = rand(3, 4, seed=8), rand(3, 4, seed=9), rand(3, 4, seed=10)
    torch.testing.assert_close(Triplet()(a, p, n), Triplet()(a, p, n[:, None]))


def test_triplet_batch_hard_needs_labels():
    a = torch.randn(3, 2)
    with pytest.raises(ValueError, match="batch_hard"):
        Triplet(mining="batch_hard")(a, a, a)


def test_triplet_ties_of_identical_embeddings():
    x = rand(2, 3, seed=11).detach().repeat(3, 1).requires_grad_()  # rows 0, 2, 4 equal; 1, 3, 5 equal
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    loss = Triplet(margin=0.5, mining="all")(x, labels)
    assert_matches(loss, reference_triplet_mined(x, labels, 0.5, "euclidean", "all"), [x])
    # batch_hard: several equal hardest distances make the gradient a choice of subgradient (amax
    # splits it among the ties, the loop picks one), so only the value and finiteness are compared.
    loss = Triplet(margin=0.5, mining="batch_hard")(x, labels)
    torch.testing.assert_close(loss, reference_triplet_mined(x, labels, 0.5, "euclidean", "batch_hard"))
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("mining", Triplet.MINING)
def test_triplet_gradcheck(mining):
    x = rand(5, 3, seed=12)
    labels = torch.tensor([0, 0, 1, 1, 1])
    assert torch.autograd.gradcheck(lambda e: Triplet(margin=2.0, mining=mining)(e, labels), (x,))


def reference_lifted(x, labels, margin, kind="euclidean"):
    batch = x.shape[0]
    terms = []
    for i in range(batch):
        for j in range(i + 1, batch):
            if labels[i] != labels[j]:
                continue
            exponents = [margin - dist(x[i], x[k], kind) for k in range(batch) if labels[k] != labels[i]]
            exponents += [margin - dist(x[j], x[l], kind) for l in range(batch) if labels[l] != labels[j]]
            if not exponents:
                continue
            j_ij = lse(exponents) + dist(x[i], x[j], kind)
            terms.append(torch.clamp(j_ij, min=0) ** 2)
    return mean(terms) / 2


@pytest.mark.parametrize("labels", LABELS[1:], ids=["pairs", "singletons", "one-negative"])
@pytest.mark.parametrize(
    ("kind", "margin"), [("euclidean", 1.0), ("cosine", 0.5), ("squared_euclidean", 4.0)]
)
def test_lifted_structure_matches_loop(labels, kind, margin):
    x = rand(labels.shape[0], 3, seed=13)
    loss = LiftedStructure(margin=margin, distance=kind)(x, labels)
    assert_matches(loss, reference_lifted(x, labels, margin, kind), [x])


def test_lifted_structure_gradcheck():
    x = rand(5, 3, seed=14)
    labels = torch.tensor([0, 0, 1, 1, 2])
    assert torch.autograd.gradcheck(lambda e: LiftedStructure(margin=3.0)(e, labels), (x,))
