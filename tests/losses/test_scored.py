"""CoSENT against an explicit loop over ordered pairs of scored pairs."""

from __future__ import annotations

import pytest
import torch
from loss_reference import assert_matches, lse, rand, sim

from contrasent.losses import CoSENT


def reference_cosent(a, b, score, scale, kind):
    batch = a.shape[0]
    exponents = [(a.sum() + b.sum()) * 0]  # the "1 +" term, kept on the graph for B=1
    for i in range(batch):
        for j in range(batch):
            if score[i] > score[j]:
                exponents.append(scale * (sim(a[j], b[j], kind) - sim(a[i], b[i], kind)))
    return lse(exponents)


@pytest.mark.parametrize(
    "score",
    [
        torch.tensor([3.0]),
        torch.tensor([0.0, 5.0, 2.5, 2.5, 1.0]),  # a tie: that pair contributes nothing
        torch.tensor([1, 1, 1]),  # all tied (integer scores): the loss is 0
        torch.tensor([4.2, 0.3, 3.1, 1.7]),
    ],
    ids=["B=1", "ties", "all-tied", "distinct"],
)
@pytest.mark.parametrize(("kind", "scale"), [("cosine", 20.0), ("dot", 1.0)])
def test_cosent_matches_loop(score, kind, scale):
    a, b = rand(score.shape[0], 4, seed=0), rand(score.shape[0], 4, seed=1)
    loss = CoSENT(scale=scale, similarity=kind)(a, b, score)
    assert_matches(loss, reference_cosent(a, b, score, scale, kind), [a, b])


def test_cosent_gradcheck():
    a, b = rand(4, 3, seed=2), rand(4, 3, seed=3)
    score = torch.tensor([0.1, 0.9, 0.4, 0.6])
    assert torch.autograd.gradcheck(lambda *x: CoSENT(scale=5.0)(*x, score), (a, b))
