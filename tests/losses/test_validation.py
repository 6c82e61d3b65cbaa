"""Bad input gives a ValueError that names the argument and the shapes."""

from __future__ import annotations

import pytest
import torch

from contrasent.losses import (
    NCE,
    NEG,
    CoSENT,
    InfoNCE,
    LiftedStructure,
    MarginContrastive,
    NPair,
    NTXent,
    SoftNearestNeighbors,
    SupCon,
    Triplet,
)

A4, A3 = torch.randn(4, 8), torch.randn(3, 8)
LABELS4 = torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize("loss", [InfoNCE(), NPair(), NEG(), NCE()], ids=lambda m: type(m).__name__)
def test_anchor_positive_shapes(loss):
    with pytest.raises(ValueError, match=r"anchors and positives .*\(4, 8\) and \(3, 8\)"):
        loss(A4, A3)
    with pytest.raises(ValueError, match=r"anchors must be a 2-D tensor \(B, d\), got shape \(4,\)"):
        loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match=r"negatives must have shape .*B=4, d=8.*\(3, 2, 8\)"):
        loss(A4, A4, torch.randn(3, 2, 8))
    with pytest.raises(ValueError, match=r"negatives must be a 3-D tensor \(B, k, d\), got shape \(4,\)"):
        loss(A4, A4, torch.randn(4))
    with pytest.raises(ValueError, match=r"anchors must be a floating point tensor"):
        loss(A4.long(), A4.long())
    with pytest.raises(ValueError, match=r"anchors must hold at least one row"):
        loss(A4[:0], A4[:0])


def test_views_and_pairs_shapes():
    with pytest.raises(ValueError, match=r"view1 and view2 .*\(4, 8\) and \(3, 8\)"):
        NTXent()(A4, A3)
    with pytest.raises(ValueError, match=r"a and b .*\(4, 8\) and \(3, 8\)"):
        MarginContrastive()(A4, A3, LABELS4)
    with pytest.raises(ValueError, match=r"a and b .*\(4, 8\) and \(3, 8\)"):
        CoSENT()(A4, A3, torch.rand(4))
    with pytest.raises(ValueError, match=r"anchors and positives .*\(4, 8\) and \(3, 8\)"):
        Triplet()(A4, A3, A4)


@pytest.mark.parametrize(
    "loss", [Triplet(), LiftedStructure(), SupCon(), SoftNearestNeighbors()], ids=lambda m: type(m).__name__
)
def test_labels(loss):
    with pytest.raises(ValueError, match=r"labels must be a 1-D integer tensor of length B=4.*\(3,\)"):
        loss(A4, LABELS4[:3])
    with pytest.raises(ValueError, match=r"labels .*B=4.*torch.float32"):
        loss(A4, LABELS4.float())
    with pytest.raises(ValueError, match=r"labels .*B=4.*got shape \(4, 1\)"):
        loss(A4, LABELS4[:, None])
    with pytest.raises(ValueError, match=r"embeddings must be a 2-D tensor \(B, d\), got shape \(2, 2, 8\)"):
        loss(torch.randn(2, 2, 8), LABELS4)
    with pytest.raises(TypeError, match="labels must be a torch.Tensor"):
        loss(A4, [0, 0, 1, 1])


def test_pair_labels_and_scores():
    with pytest.raises(ValueError, match=r"label must be a 1-D integer tensor of length B=4.*\(3,\)"):
        MarginContrastive()(A4, A4, LABELS4[:3])
    with pytest.raises(ValueError, match=r"label must hold only 0 \(dissimilar\) and 1"):
        MarginContrastive()(A4, A4, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"label .*torch.float32"):
        MarginContrastive()(A4, A4, LABELS4.float())
    with pytest.raises(ValueError, match=r"score must be a 1-D real-valued tensor of length B=4.*\(5,\)"):
        CoSENT()(A4, A4, torch.rand(5))
    with pytest.raises(ValueError, match=r"score .*torch.bool"):
        CoSENT()(A4, A4, torch.ones(4, dtype=torch.bool))


def test_infonce_mask():
    with pytest.raises(
        ValueError, match=r"mask must be a bool tensor of shape \(B, C\) = \(4, 8\).*\(4, 4\)"
    ):
        InfoNCE()(A4, A4, A4, mask=torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask .*torch.float32"):
        InfoNCE()(A4, A4, mask=torch.zeros(4, 4))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: InfoNCE(temperature=0.0), "temperature must be > 0, got 0.0"),
        (lambda: NTXent(temperature=-1), "temperature must be > 0"),
        (lambda: SupCon(temperature=0), "temperature must be > 0"),
        (lambda: SoftNearestNeighbors(temperature=-0.5), "temperature must be > 0"),
        (lambda: NCE(temperature=0), "temperature must be > 0"),
        (lambda: CoSENT(scale=0), "scale must be > 0"),
        (lambda: InfoNCE(hard_negative_weight=-1), "hard_negative_weight must be >= 0"),
        (lambda: NPair(l2_weight=-1), "l2_weight must be >= 0"),
        (lambda: MarginContrastive(pos_margin=-0.1), "pos_margin must be >= 0"),
        (lambda: MarginContrastive(neg_margin=0), "neg_margin must be > 0"),
        (lambda: Triplet(margin=-1), "margin must be >= 0"),
        (lambda: LiftedStructure(margin=-1), "margin must be >= 0"),
        (lambda: NEG(num_negatives=0), "num_negatives must be a positive int or None"),
        (lambda: NCE(k=0), "k must be a positive int, got 0"),
        (lambda: NCE(noise="unigram"), r"noise must be one of \('uniform',\)"),
        (lambda: NCE(noise=torch.zeros(2, 2)), r"noise must be a 1-D tensor \(C,\)"),
        (lambda: InfoNCE(similarity="l1"), "similarity must be one of"),
        (lambda: MarginContrastive(distance="squared_euclidean"), "distance must be one of"),
        (
            lambda: Triplet(mining="easy"),
            r"mining must be one of \('all', 'hard', 'semihard', 'batch_hard'\)",
        ),
    ],
)
def test_constructor_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()
