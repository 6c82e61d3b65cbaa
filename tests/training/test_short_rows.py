"""Rows short of hard negatives (``None`` where mining found too few) train with the negatives they have and
the in-batch ones: the step's loss equals a float64 loop over the candidates that exist."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from step_data import small_dataset

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.data.batch import Batch
from contrasent.losses import InfoNCE, NPair
from contrasent.training import ContrastiveStep
from contrasent.training.queue import NegativeQueue

TAU = 0.1


def reference_loss(anchors, positives, negatives, valid, tau, alpha=0.0):
    """Float64 loop: row i's softmax over every positive and every present hard negative of the batch,
    row i's own negatives weighted by ``alpha``; the missing ones are simply not candidates."""
    rows, k = valid.shape
    candidates = [(positives[j], None) for j in range(rows)]
    candidates += [(negatives[j][m], j) for j in range(rows) for m in range(k) if valid[j, m]]
    total = 0.0
    for i in range(rows):
        logits = torch.stack([F.cosine_similarity(anchors[i], c, dim=0) / tau + (alpha if owner == i else 0.0)
                              for c, owner in candidates])
        total = total + torch.logsumexp(logits, 0) - F.cosine_similarity(anchors[i], positives[i], dim=0) / tau
    return total / rows


def short_batch(valid: torch.Tensor, dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, Batch]:
    """(n, d) float64 embeddings of the texts present, view-major (anchors, positives, negative view 2 ...),
    and their Batch with distinct text ids."""
    rows, k = valid.shape
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(2 * rows + int(valid.sum()), dim, generator=g, dtype=torch.float64).requires_grad_()
    ids = torch.arange((2 + k) * rows).view(2 + k, rows) + 1
    batch = Batch(chunks=[], restore=torch.arange(embeddings.shape[0]), num_views=2 + k, text_ids=ids,
                  negative_valid=valid)
    return embeddings, batch


def split(embeddings: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[list]]:
    """Anchors, positives and each row's negatives (``None`` where missing) of :func:`short_batch`."""
    rows, k = valid.shape
    anchors, positives = embeddings[:rows], embeddings[rows:2 * rows]
    negatives, next_text = [[None] * k for _ in range(rows)], 2 * rows
    for m in range(k):
        for j in range(rows):
            if valid[j, m]:
                negatives[j][m], next_text = embeddings[next_text], next_text + 1
    return anchors, positives, negatives


def random_valid(rows: int, k: int, seed: int) -> torch.Tensor:
    valid = torch.rand(rows, k, generator=torch.Generator().manual_seed(seed)) > 0.4
    valid[0] = False  # a row with no hard negative at all
    valid[1] = True
    return valid


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("alpha", "gather"), [(0.0, False), (0.7, False), (0.0, True)])
def test_step_loss_and_gradient_match_a_loop_without_the_missing_negatives(k, seed, alpha, gather):
    valid = random_valid(5, k, seed)
    embeddings, batch = short_batch(valid, seed=seed)
    step = ContrastiveStep(InfoNCE(temperature=TAU, hard_negative_weight=alpha), gather=gather)
    loss = step.loss_from_embeddings(embeddings, batch, training=False)
    (grad,) = torch.autograd.grad(loss, embeddings)
    expected = reference_loss(*split(embeddings, valid), valid, TAU, alpha)
    (expected_grad,) = torch.autograd.grad(expected, embeddings)
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-6)
    assert not math.isclose(loss.item(), step.loss(*short_views(embeddings, batch)).item())  # the mask mattered


def short_views(embeddings: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The zero-filled (B, k, d) inputs without the mask: the missing slots would count as candidates."""
    from contrasent.training.step import placed_views

    views = placed_views(embeddings, batch)
    return views[0], views[1], views[2:].transpose(0, 1)


def test_missing_negatives_are_not_enqueued():
    valid = torch.tensor([[True, False], [False, False], [True, True]])
    embeddings, batch = short_batch(valid)
    queue = NegativeQueue(100)
    ContrastiveStep(InfoNCE(temperature=TAU), queue=queue).loss_from_embeddings(embeddings, batch)
    assert len(queue) == 3 + 3  # the positives and the present negatives
    assert queue.ids.tolist() == [*batch.text_ids[1].tolist(), batch.text_ids[2, 0].item(),
                                  batch.text_ids[2, 2].item(), batch.text_ids[3, 2].item()]
    torch.testing.assert_close(queue.embeddings, embeddings[3:].detach(), rtol=0, atol=0)


def test_a_loss_that_cannot_mask_is_refused_naming_the_column():
    embeddings, batch = short_batch(torch.tensor([[True, False], [True, True], [True, False]]))
    with pytest.raises(ValueError, match=r"hard-negative column 2 has no text in 2 of 3 rows.*NPair"):
        ContrastiveStep(NPair()).loss_from_embeddings(embeddings, batch, training=False)


def tiny_trainer(tiny_bert_dir, tmp_path, **options) -> ContrastiveTrainer:
    model = SentenceEncoder.from_pretrained(
        tiny_bert_dir, dtype=torch.float64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                        per_device_train_batch_size=8, temperature=TAU, max_seq_length=16, **options)
    return ContrastiveTrainer(model=model, args=args, train_dataset=small_dataset("short", 8))


@pytest.mark.parametrize("options", [{}, {"mini_batch_size": 3}, {"momentum": 0.5, "queue_size": 64}],
                         ids=["plain", "gradcache", "momentum"])
def test_a_trainer_step_equals_the_loop(tiny_bert_dir, tmp_path, options):
    """The trainer's step on data with None negatives: the loss and every parameter gradient are the loop's
    on the encoder's embeddings of the texts present (the momentum encoder starts as a copy: same keys)."""
    trainer = tiny_trainer(tiny_bert_dir, tmp_path, **options)
    data, model = trainer.train_dataset, trainer.model
    batch = trainer.data_collator([data[i] for i in range(len(data))])
    model.zero_grad()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop before each step
    loss = trainer.training_step(model, batch)
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]

    model.zero_grad()
    columns = ["anchor", "positive", "negative_1", "negative_2"]
    valid = torch.tensor([[data[i][c] is not None for c in columns[2:]] for i in range(len(data))])
    texts = {c: [t for t in data[c] if t is not None] for c in columns}
    encoded = {c: encode(model, texts[c], keys="momentum" in options and c != "anchor") for c in columns}
    negatives = [[None, None] for _ in range(len(data))]
    for m, column in enumerate(columns[2:]):
        rows = valid[:, m].nonzero().flatten().tolist()
        for position, row in enumerate(rows):
            negatives[row][m] = encoded[column][position]
    expected = reference_loss(encoded["anchor"], encoded["positive"], negatives, valid, TAU)
    expected.backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=0, atol=1e-6)
    for grad, param in zip(grads, [p for p in model.parameters() if p.requires_grad]):
        torch.testing.assert_close(grad, param.grad, rtol=0, atol=1e-6)


def encode(model: SentenceEncoder, texts: list[str], keys: bool) -> torch.Tensor:
    """(n, d) embeddings of ``texts`` (cut to 16 tokens); without a graph for momentum ``keys``."""
    tokens = model.tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.set_grad_enabled(not keys):
        return model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])


def test_the_trainer_refuses_a_loss_that_cannot_mask_naming_the_column(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match=r"column 'negative_1': 1 of 8 rows have no hard negative.*loss NPair"):
        tiny_trainer(tiny_bert_dir, tmp_path, loss="npair")


def test_the_collated_batch_trains_through_a_plain_step(tiny_bert_dir):
    """No placeholder text is encoded: the chunks hold the 8 + 8 + 7 + 5 texts present."""
    model = SentenceEncoder.from_pretrained(tiny_bert_dir)
    data = small_dataset("short", 8)
    batch = ContrastiveCollator(model.tokenizer, infer_layout(data.column_names), 16)([data[i] for i in range(8)])
    assert sum(chunk["input_ids"].shape[0] for chunk in batch.chunks) == 28
    assert torch.isfinite(ContrastiveStep(InfoNCE())(model, batch))
