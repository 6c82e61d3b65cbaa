"""SupCon and SoftNearestNeighbors against explicit loops over anchors and their positives."""

from __future__ import annotations

import pytest
import torch
from loss_reference import assert_matches, lse, mean, rand, sim

from contrasent.losses import SoftNearestNeighbors, SupCon

LABELS = [
    torch.tensor([0, 0, 1, 1, 2, 2]),
    torch.tensor([3, 1, 3, 3, 0, 1, 7]),  # singletons 0 and 7 are skipped as anchors
    torch.tensor([4, 4, 4]),
]


def anchors_with_positives(labels):
    """(i, positives of i) for every anchor that has one: the others are skipped by both losses."""
    batch = labels.shape[0]
    for i in range(batch):
        positives = [j for j in range(batch) if j != i and labels[j] == labels[i]]
        if positives:
            yield i, positives


def reference_supcon(x, labels, tau, kind):
    batch = x.shape[0]
    rows = []
    for i, positives in anchors_with_positives(labels):
        log_denominator = lse([sim(x[i], x[a], kind) / tau for a in range(batch) if a != i])
        rows.append(-mean([sim(x[i], x[p], kind) / tau - log_denominator for p in positives]))
    return mean(rows)


def reference_snn(x, labels, temperature, kind):
    batch = x.shape[0]
    rows = []
    for i, positives in anchors_with_positives(labels):
        numerator = lse([sim(x[i], x[j], kind) / temperature for j in positives])
        denominator = lse([sim(x[i], x[k], kind) / temperature for k in range(batch) if k != i])
        rows.append(denominator - numerator)
    return mean(rows)


@pytest.mark.parametrize("labels", LABELS, ids=["pairs", "singletons", "all-equal"])
@pytest.mark.parametrize(("kind", "tau"), [("cosine", 0.1), ("dot", 1.0), ("squared_euclidean", 0.5)])
def test_supcon_matches_loop(labels, kind, tau):
    x = rand(labels.shape[0], 4, seed=0)
    loss = SupCon(temperature=tau, similarity=kind)(x, labels)
    assert_matches(loss, reference_supcon(x, labels, tau, kind), [x])


@pytest.mark.parametrize("labels", LABELS, ids=["pairs", "singletons", "all-equal"])
@pytest.mark.parametrize(("kind", "temperature"), [("squared_euclidean", 1.0), ("cosine", 0.2)])
def test_soft_nearest_neighbors_matches_loop(labels, kind, temperature):
    x = rand(labels.shape[0], 4, seed=1)
    loss = SoftNearestNeighbors(temperature=temperature, similarity=kind)(x, labels)
    assert_matches(loss, reference_snn(x, labels, temperature, kind), [x])


@pytest.mark.parametrize("loss", [SupCon(temperature=0.3), SoftNearestNeighbors(temperature=2.0)])
def test_gradcheck(loss):
    x = rand(5, 3, seed=2)
    labels = torch.tensor([0, 1, 0, 1, 2])
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (x,))
