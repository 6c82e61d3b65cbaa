"""Gradient caching: `ContrastiveTrainer.training_step` with ``mini_batch_size`` gives the parameter gradients
of the uncached step on the same chunks, dropout on, float64 (issue #6, "must show" (b)). The step is
`transformers.Trainer`'s own: the cached loss's backward does the second pass (issue #13)."""

from __future__ import annotations

import datasets
import pytest
import torch
from step_data import small_dataset
from transformers import Trainer

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.losses import Matryoshka
from contrasent.training import step as step_module
from contrasent.training.gradcache import RandomState, cached_loss

ROWS = 8


def dataset(kind: str) -> datasets.Dataset:
    return small_dataset(kind, ROWS)


def trainer(tiny_bert_dir, tmp_path, data: datasets.Dataset, chunk_size: int | None, cached: bool,
            chunk_tokens: int | None = None, **options: object) -> ContrastiveTrainer:
    """A trainer on a float64 tiny BERT with dropout on; the uncached one runs the same chunks (of
    ``chunk_size`` texts and/or ``chunk_tokens`` padded tokens). ``options``: more
    `ContrastiveTrainingArguments`."""
    torch.manual_seed(0)
    model = SentenceEncoder.from_pretrained(tiny_bert_dir, dtype=torch.float64)
    collator = ContrastiveCollator(model.tokenizer, infer_layout(data.column_names), max_length=16,
                                   chunk_size=None if cached else chunk_size,
                                   chunk_tokens=None if cached else chunk_tokens)
    args = ContrastiveTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=ROWS,
        mini_batch_size=chunk_size if cached else None, mini_batch_tokens=chunk_tokens if cached else None,
        temperature=0.1, **options,
    )
    return ContrastiveTrainer(model=model, args=args, train_dataset=data, data_collator=collator)


def step(trainer_: ContrastiveTrainer, accumulation: int) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """One training step from a fixed random state: the loss, every gradient, and the next random draw."""
    batch = trainer_.data_collator([trainer_.train_dataset[i] for i in range(ROWS)])
    trainer_.current_gradient_accumulation_steps = accumulation  # set by Trainer's loop before each step
    trainer_.model.zero_grad()
    torch.manual_seed(1234)
    loss = trainer_.training_step(trainer_.model, batch)
    grads = [p.grad.clone() for p in trainer_.model.parameters() if p.requires_grad]
    return loss, grads, torch.rand(3, dtype=torch.float64)


@pytest.mark.parametrize(("kind", "chunk_size", "accumulation"), [
    ("triplets", 1, 1), ("triplets", 3, 1), ("triplets", 3 * ROWS, 1), ("triplets", 3, 2),
    ("labels", 1, 1), ("labels", 3, 1), ("labels", ROWS, 1), ("short", 1, 1), ("short", 3, 2),
])
def test_cached_step_matches_the_uncached_step(tiny_bert_dir, tmp_path, monkeypatch, kind, chunk_size, accumulation):
    check_cached_matches_uncached(tiny_bert_dir, tmp_path, monkeypatch, kind, chunk_size, accumulation)


GTE = '{"directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]}'


MATRYOSHKA = {"matryoshka_dims": [32, 16, 4], "matryoshka_weights": [1.0, 0.5, 2.0]}


@pytest.mark.parametrize(("options", "applied"), [
    ({"loss_kwargs": GTE}, lambda loss: len(loss.directions) == 4),
    (MATRYOSHKA, lambda loss: isinstance(loss, Matryoshka) and loss.dims == (32, 16, 4)),
    ({**MATRYOSHKA, "loss_kwargs": GTE}, lambda loss: len(loss.loss.directions) == 4),
], ids=["gte", "matryoshka", "gte-matryoshka"])
def test_cached_step_matches_the_uncached_step_for_loss_options(tiny_bert_dir, tmp_path, monkeypatch, options,
                                                                applied):
    """The loss options that change what the loss sees of the embeddings (GTE's extra score blocks, the
    Matryoshka prefixes): the cached gradient is that of the whole loss."""
    cached = check_cached_matches_uncached(tiny_bert_dir, tmp_path, monkeypatch, "triplets", 3, 1, **options)
    assert applied(cached.loss)


@pytest.mark.parametrize(("kind", "chunk_tokens", "chunk_size"), [
    ("triplets", 40, None), ("triplets", 40, 2), ("triplets", 1, None), ("labels", 30, None),
])
def test_cached_step_by_token_budget_matches_the_uncached_step(tiny_bert_dir, tmp_path, monkeypatch, kind,
                                                               chunk_tokens, chunk_size):
    """``mini_batch_tokens``: chunks of at most that many padded tokens (with ``mini_batch_size``, of at most
    that many texts too); a budget of 1 token makes every text its own chunk."""
    cached = check_cached_matches_uncached(tiny_bert_dir, tmp_path, monkeypatch, kind, chunk_size, 1,
                                           chunk_tokens=chunk_tokens)
    assert cached.data_collator.chunk_tokens == chunk_tokens
    batch = cached.data_collator([cached.train_dataset[i] for i in range(ROWS)])
    lengths = [chunk["sequence_lengths"].tolist() if "sequence_lengths" in chunk  # padding-free
               else chunk["attention_mask"].sum(1).tolist() for chunk in batch.chunks]
    assert len(lengths) > 1
    assert all(len(chunk) == 1 or max(chunk) * len(chunk) <= chunk_tokens for chunk in lengths)
    assert chunk_size is None or all(len(chunk) <= chunk_size for chunk in lengths)


def check_cached_matches_uncached(tiny_bert_dir, tmp_path, monkeypatch, kind, chunk_size, accumulation,
                                  chunk_tokens: int | None = None, **options: object) -> ContrastiveTrainer:
    """One step with ``mini_batch_size`` = ``chunk_size`` against one without: same loss, gradients and RNG
    state afterwards. Returns the cached trainer."""
    cached_steps = []

    def counted_cached_loss(*args, **kwargs):
        cached_steps.append(1)
        return cached_loss(*args, **kwargs)

    monkeypatch.setattr(step_module, "cached_loss", counted_cached_loss)
    assert ContrastiveTrainer.training_step is Trainer.training_step  # GA division, backward: Trainer's own
    data = dataset(kind)
    reference = trainer(tiny_bert_dir, tmp_path / "plain", data, chunk_size, False, chunk_tokens, **options)
    cached = trainer(tiny_bert_dir, tmp_path / "cached", data, chunk_size, True, chunk_tokens, **options)
    assert cached.data_collator.chunk_size == chunk_size  # the collator forms GradCache's chunks
    assert reference.model.backbone.config.hidden_dropout_prob > 0
    ref_loss, ref_grads, ref_next = step(reference, accumulation)
    assert reference.model.training  # training_step switched dropout on
    assert not cached_steps  # the reference step did not cache
    loss, grads, next_draw = step(cached, accumulation)
    assert len(cached_steps) == 1  # the cached one did
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-10)
    assert len(grads) == len(ref_grads) and any(g.abs().max() > 0 for g in ref_grads)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(next_draw, ref_next, rtol=0, atol=0)  # the RNG ends where an uncached step's does
    return cached


def test_dropout_masks_are_replayed(monkeypatch):
    """The same through cached_loss directly; and with the replay disabled the gradient differs (the
    second pass would draw new dropout masks), so the equality above is not vacuous."""
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(4, 4).double(), torch.nn.Dropout(0.5))
    chunks = [{"x": torch.randn(2, 4, dtype=torch.float64)} for _ in range(3)]

    def loss_fn(parts):
        return torch.cat(parts).pow(2).sum()

    def cached_grad():
        layer.zero_grad()
        torch.manual_seed(5)
        cached_loss(lambda c: layer(c["x"]), chunks, loss_fn).backward()
        return layer[0].weight.grad.clone()

    torch.manual_seed(5)
    loss_fn([layer(c["x"]) for c in chunks]).backward()
    reference = layer[0].weight.grad.clone()
    torch.testing.assert_close(cached_grad(), reference, rtol=0, atol=1e-12)
    monkeypatch.setattr(RandomState, "restore", lambda self: None)
    assert not torch.allclose(cached_grad(), reference)


def test_the_second_pass_runs_under_the_first_passs_autocast():
    """The backward re-embeds under the autocast settings of the forward, though it runs outside them."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 4)
    chunks = [{"x": torch.randn(2, 4)} for _ in range(2)]
    seen = []

    def encode(chunk):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return layer(chunk["x"])

    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = cached_loss(encode, chunks, lambda parts: torch.cat(parts).float().pow(2).sum())
    assert not torch.is_autocast_enabled("cpu")
    loss.backward()
    assert seen == [True] * 4  # two chunks, embedded twice
    cached = layer.weight.grad.clone()
    layer.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = torch.cat([layer(c["x"]) for c in chunks]).float().pow(2).sum()
    reference.backward()
    torch.testing.assert_close(cached, layer.weight.grad, rtol=2e-2, atol=2e-2)
