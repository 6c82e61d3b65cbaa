"""Matryoshka: the weighted sum over dimensions of the wrapped loss on truncated, re-normalised embeddings,
against a float64 loop reference and sentence-transformers' MatryoshkaLoss; its argument checks."""

from __future__ import annotations

import pytest
import torch
from loss_calls import SHARP, call_loss
from loss_reference import assert_matches, rand
from test_infonce import reference_infonce_with_extra
from test_infonce_gte import GTE, reference_gte
from torch import nn

from contrasent.losses import LOSSES, InfoNCE, Matryoshka, get_loss
from contrasent.losses.matryoshka import EMBEDDING_ARGUMENTS
from contrasent.training.loss_inputs import ARRANGE


def truncated(x: torch.Tensor | None, dim: int) -> torch.Tensor | None:
    """The first ``dim`` components of every vector, divided by their Euclidean norm, written out."""
    if x is None:
        return None
    head = x[..., :dim]
    return head / head.pow(2).sum(-1, keepdim=True).sqrt()


# dims in no particular order, each with its weight: the wrapper sorts them together
DIMS, WEIGHTS = (3, 8, 5), (2.0, 1.0, 0.5)


@pytest.mark.parametrize(("k", "queued", "masked"), [(None, 0, False), (2, 0, True), (2, 3, True), (1, 4, False)])
def test_infonce_matches_the_sum_of_loop_references(k, queued, masked):
    batch = 4
    a, p = rand(batch, 8, seed=0), rand(batch, 8, seed=1)
    n = None if k is None else rand(batch, k, 8, seed=2)
    extra = rand(queued, 8, seed=3) if queued else None
    mask = None
    if masked:
        mask = torch.rand(batch, batch + batch * (k or 0) + queued, generator=torch.Generator().manual_seed(1)) < 0.3
    loss = Matryoshka(InfoNCE(temperature=0.1, hard_negative_weight=0.4), DIMS, WEIGHTS)(
        a, p, n, mask=mask, extra_candidates=extra)
    expected = sum(
        weight * reference_infonce_with_extra(truncated(a, dim), truncated(p, dim), truncated(n, dim),
                                              truncated(extra, dim) if extra is not None else a[:0], 0.1, 0.4, mask)
        for dim, weight in zip(DIMS, WEIGHTS)
    )
    assert_matches(loss, expected, [t for t in (a, p, n, extra) if t is not None])


def test_gte_matches_the_sum_of_loop_references():
    a, p, n = rand(3, 6, seed=4), rand(3, 6, seed=5), rand(3, 2, 6, seed=6)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 1] = mask[2, 4] = True
    loss = Matryoshka(InfoNCE(temperature=0.1, directions=GTE), [6, 2])(a, p, n, mask=mask)
    expected = sum(reference_gte(truncated(a, dim), truncated(p, dim), truncated(n, dim), 0.1, GTE, mask=mask)
                   for dim in (6, 2))
    assert_matches(loss, expected, [a, p, n])


class _Reseeded(nn.Module):
    """``loss`` with the random draws of NEG and NCE restarted at every call, as ``call_loss`` does."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss
        self.input_format = loss.input_format
        self.optional_inputs = frozenset(getattr(loss, "optional_inputs", ()))

    def forward(self, *inputs, **keywords):
        torch.manual_seed(0)
        return self.loss(*inputs, **keywords)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_the_weighted_sum_over_truncated_embeddings(name):
    """For every input format: embeddings are cut and re-normalised, labels and scores passed as they are."""
    x = rand(6, 8, seed=7)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    loss = _Reseeded(get_loss(name, **SHARP[name]))
    wrapped = Matryoshka(loss, DIMS, WEIGHTS)
    assert wrapped.input_format == loss.input_format
    assert wrapped.optional_inputs == frozenset(getattr(loss, "optional_inputs", ()))
    expected = sum(weight * call_loss(loss, truncated(x, dim), labels) for dim, weight in zip(DIMS, WEIGHTS))
    got = call_loss(wrapped, x, labels)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_every_input_format_is_known():
    assert set(EMBEDDING_ARGUMENTS) == set(ARRANGE)


class _Columns(nn.Module):
    """A stand-in SentenceTransformer whose 'forward' returns the embeddings it is given."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def get_embedding_dimension(self) -> int:
        return self.dim

    def _get_untruncated_embedding_dimension(self) -> int:  # what MatryoshkaLoss asks since sentence-transformers 6.3
        return self.dim

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": features["embedding"]}


@pytest.mark.parametrize("k", [0, 2])
def test_matches_sentence_transformers_matryoshka_loss(k):
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    from sentence_transformers.base.losses.merged_forward import column_merging_disabled

    a, p, n = rand(5, 16, seed=8).float(), rand(5, 16, seed=9).float(), rand(5, k, 16, seed=10).float()
    model = _Columns(16)
    theirs = st_losses.MatryoshkaLoss(
        model, st_losses.MultipleNegativesRankingLoss(model, scale=20.0), [16, 8, 4], [1.0, 0.5, 0.25]
    )
    columns = [a, p] + [n[:, m] for m in range(k)]
    with column_merging_disabled():
        expected = theirs([{"embedding": column} for column in columns], None)
    ours = Matryoshka(InfoNCE(temperature=0.05), [16, 8, 4], [1.0, 0.5, 0.25])(a, p, n)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("dims", "weights", "message"),
    [
        ([], None, "at least one"),
        ([8, 0], None, "positive integers"),
        ([8, -4], None, "positive integers"),
        ([8, 4.5], None, "positive integers"),
        ([8, 4, 8], None, "repeat"),
        ([8, 4], [1.0], "one weight per dimension"),
        ([8, 4], [1.0, 0.0], "finite and > 0"),
        ([8, 4], [1.0, float("nan")], "finite and > 0"),
    ],
)
def test_bad_dims_and_weights_are_refused(dims, weights, message):
    with pytest.raises(ValueError, match=message):
        Matryoshka(InfoNCE(), dims, weights)


def test_a_dimension_beyond_the_embeddings_is_refused_at_the_call():
    a, p = rand(2, 4, seed=0), rand(2, 4, seed=1)
    with pytest.raises(ValueError, match="dims: 8 is more than the 4 dimensions"):
        Matryoshka(InfoNCE(), [8, 2])(a, p)


def test_a_loss_without_a_known_input_format_is_refused():
    with pytest.raises(ValueError, match="input_format"):
        Matryoshka(nn.MSELoss(), [4])


def test_bf16_embeddings_are_cut_in_float32():
    a, p = rand(4, 8, seed=0), rand(4, 8, seed=1)
    loss = Matryoshka(InfoNCE(), [8, 4])(a.detach().bfloat16(), p.detach().bfloat16())
    assert loss.dtype == torch.float32
