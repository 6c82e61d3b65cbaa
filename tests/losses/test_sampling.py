"""NEG and NCE against explicit loops, with the random draws replayed from the same seed."""

from __future__ import annotations

import math

import pytest
import torch
from loss_reference import assert_matches, candidates, log_sigmoid, mean, rand, sim

from contrasent.losses import NCE, NEG
from contrasent.losses.sampling import draw_noise, sample_in_batch_negatives


def reference_neg(a, p, negatives_of, kind="dot"):
    """``negatives_of(i)`` lists the negative vectors of anchor i."""
    rows = []
    for i in range(a.shape[0]):
        row = -log_sigmoid(sim(a[i], p[i], kind))
        for n in negatives_of(i):
            row = row - log_sigmoid(-sim(a[i], n, kind))
        rows.append(row)
    return mean(rows)


@pytest.mark.parametrize(("batch", "k"), [(1, 1), (4, 1), (3, 3), (3, 0)])
@pytest.mark.parametrize("kind", ["dot", "cosine"])
def test_neg_explicit_negatives_match_loop(batch, k, kind):
    a, p, n = rand(batch, 5, seed=0), rand(batch, 5, seed=1), rand(batch, k, 5, seed=2)
    loss = NEG(similarity=kind)(a, p, n)
    reference = reference_neg(a, p, lambda i: [n[i, m] for m in range(k)], kind)
    assert_matches(loss, reference, [a, p, n])


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_neg_all_in_batch_negatives_match_loop(batch):
    a, p = rand(batch, 4, seed=3), rand(batch, 4, seed=4)
    loss = NEG()(a, p)
    reference = reference_neg(a, p, lambda i: [p[j] for j in range(batch) if j != i])
    assert_matches(loss, reference, [a, p])


def test_neg_sampled_in_batch_negatives_match_loop():
    a, p = rand(6, 4, seed=5), rand(6, 4, seed=6)
    torch.manual_seed(123)
    loss = NEG(num_negatives=2)(a, p)
    torch.manual_seed(123)
    chosen = sample_in_batch_negatives(6, 2)
    reference = reference_neg(a, p, lambda i: [p[j] for j in range(6) if chosen[i, j]])
    assert_matches(loss, reference, [a, p])


def test_sample_in_batch_negatives_draws_distinct_others():
    chosen = sample_in_batch_negatives(7, 3)
    assert chosen.sum(1).tolist() == [3] * 7
    assert not chosen.diagonal().any()
    assert torch.equal(sample_in_batch_negatives(4, 5), ~torch.eye(4, dtype=torch.bool))


def test_neg_gradcheck():
    a, p, n = rand(3, 4, seed=7), rand(3, 4, seed=8), rand(3, 2, 4, seed=9)
    assert torch.autograd.gradcheck(NEG(), (a, p, n))


def reference_nce(a, p, n, log_q, samples, k, tau, kind="dot"):
    columns = [vector for vector, _ in candidates(p, n)]
    rows = []
    for i in range(a.shape[0]):
        row = -log_sigmoid(sim(a[i], p[i], kind) / tau - (math.log(k) + log_q[i]))
        for c in samples[i].tolist():
            row = row - log_sigmoid(-(sim(a[i], columns[c], kind) / tau - (math.log(k) + log_q[c])))
        rows.append(row)
    return mean(rows)


@pytest.mark.parametrize(("batch", "k_neg", "k"), [(1, None, 1), (4, None, 5), (3, 2, 3), (3, 0, 2)])
def test_nce_uniform_noise_matches_loop(batch, k_neg, k):
    a, p = rand(batch, 4, seed=10), rand(batch, 4, seed=11)
    n = None if k_neg is None else rand(batch, k_neg, 4, seed=12)
    num_candidates = batch * (1 + (k_neg or 0))
    torch.manual_seed(7)
    loss = NCE(k=k, temperature=0.5)(a, p, n)
    torch.manual_seed(7)
    log_q = torch.full((num_candidates,), -math.log(num_candidates), dtype=torch.float64)
    samples = draw_noise(log_q, batch, k)
    inputs = [t for t in (a, p, n) if t is not None]
    assert_matches(loss, reference_nce(a, p, n, log_q.tolist(), samples, k, 0.5), inputs)


def test_nce_given_noise_log_probabilities_match_loop():
    a, p = rand(4, 3, seed=13), rand(4, 3, seed=14)
    unnormalised = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64).log() + 1.0
    torch.manual_seed(8)
    loss = NCE(noise=unnormalised, k=6, similarity="cosine")(a, p)
    torch.manual_seed(8)
    log_q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64).log()
    samples = draw_noise(log_q, 4, 6)
    assert_matches(loss, reference_nce(a, p, None, log_q.tolist(), samples, 6, 1.0, "cosine"), [a, p])


def test_draw_noise_follows_the_distribution():
    log_q = torch.tensor([0.0, float("-inf"), float("-inf")])
    assert draw_noise(log_q, 5, 4).eq(0).all()


def test_nce_noise_of_wrong_length_is_rejected():
    with pytest.raises(ValueError, match=r"noise.*C=4.*\(3,\)"):
        NCE(noise=torch.zeros(3))(torch.randn(4, 2), torch.randn(4, 2))


def test_nce_gradcheck():
    a, p = rand(3, 4, seed=15), rand(3, 4, seed=16)
    loss = NCE(k=4)

    def seeded(*x):
        torch.manual_seed(0)
        return loss(*x)

    assert torch.autograd.gradcheck(seeded, (a, p))
