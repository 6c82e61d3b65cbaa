"""Negative queue (FIFO of detached embeddings) and momentum encoder (EMA), alone and in the trainer."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
from torch import nn

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.training.loss_inputs import candidate_inputs
from contrasent.training.queue import MomentumEncoder, NegativeQueue


def test_queue_is_fifo_and_detached():
    queue = NegativeQueue(5)
    assert len(queue) == 0 and queue.embeddings is None
    first = torch.arange(6.0, requires_grad=True).view(3, 2)
    queue.enqueue(first * 1, torch.tensor([0, 1, 2]))
    queue.enqueue(torch.full((4, 2), -1.0), torch.tensor([3, 4, 5, 6]))
    assert len(queue) == 5 and not queue.embeddings.requires_grad
    assert queue.ids.tolist() == [2, 3, 4, 5, 6]  # the oldest two left first
    assert queue.embeddings[0].tolist() == [4.0, 5.0]
    queue.enqueue(torch.zeros(7, 2), torch.arange(10, 17))  # more than the capacity: the newest 5 stay
    assert queue.ids.tolist() == [12, 13, 14, 15, 16]
    with pytest.raises(ValueError, match="size"):
        NegativeQueue(0)


def test_momentum_update_is_an_exponential_moving_average():
    torch.manual_seed(0)
    online = nn.Linear(3, 2).double()
    start = [p.detach().clone() for p in online.parameters()]
    ema = MomentumEncoder(online, momentum=0.75)
    expected = [p.clone() for p in start]
    for _ in range(2):
        with torch.no_grad():
            for p in online.parameters():
                p.add_(torch.randn_like(p))
        ema.update(online)
        expected = [0.75 * e + 0.25 * p.detach() for e, p in zip(expected, online.parameters())]
    for got, want in zip(ema.encoder.parameters(), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
        assert not got.requires_grad
    with pytest.raises(ValueError, match="momentum"):
        MomentumEncoder(online, momentum=1.0)


def trainer(tiny_bert_dir, tmp_path, **options) -> ContrastiveTrainer:
    rows = 12
    data = datasets.Dataset.from_dict({
        "anchor": [f"question number {i} about things" for i in range(rows)],
        "positive": [f"answer {i % 8} with detail" for i in range(rows)],
        "negative": [f"unrelated text {i}" for i in range(rows)],
    })
    args = ContrastiveTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
        per_device_train_batch_size=4, max_steps=3, logging_steps=1, learning_rate=1e-3, **options,
    )
    return ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args, train_dataset=data)


def test_training_with_a_queue_and_a_momentum_encoder(tiny_bert_dir, tmp_path):
    trainer_ = trainer(tiny_bert_dir, tmp_path, queue_size=10, momentum=0.9)
    step = trainer_.contrastive_step
    initial = [p.detach().clone() for p in step.momentum_encoder.encoder.parameters()]
    trainer_.train()
    losses = [entry["loss"] for entry in trainer_.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert len(step.queue) == 10  # 3 steps × 4 rows × (positive + negative), the newest 10
    online = list(trainer_.model.parameters())
    moved = [not torch.equal(a, b) for a, b in zip(step.momentum_encoder.encoder.parameters(), initial)]
    assert any(moved)
    assert any(not torch.equal(a, b) for a, b in zip(step.momentum_encoder.encoder.parameters(), online))


def test_queued_duplicates_of_a_rows_texts_are_masked(tiny_bert_dir, tmp_path):
    step = trainer(tiny_bert_dir, tmp_path, queue_size=4).contrastive_step
    ids = torch.tensor([[1, 2], [11, 12], [21, 22]])  # (V=3 views, B=2 rows)
    step.queue.enqueue(torch.randn(3, 8), torch.tensor([11, 99, 2]))  # row 0's positive, another, row 1's anchor
    views = torch.randn(3, 2, 8)
    extra = candidate_inputs(step.loss, views, ids, step.masking, step.queue)
    assert extra["extra_candidates"].shape == (3, 8)
    assert extra["mask"].shape == (2, 2 + 2 + 3)
    assert extra["mask"][:, 4:].tolist() == [[True, False, False], [False, False, True]]


def test_queue_and_momentum_need_a_loss_that_can_use_them(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="queue_size needs a loss that accepts extra_candidates, such as InfoNCE; "
                                         "SupCon does not"):
        trainer(tiny_bert_dir, tmp_path, queue_size=4, loss="supcon")
    with pytest.raises(ValueError, match="queue_size needs a loss that accepts extra_candidates"):
        trainer(tiny_bert_dir, tmp_path, queue_size=4, loss="npair")  # anchor_positive, but no queue input
    with pytest.raises(ValueError, match="momentum needs an 'anchor_positive' loss"):
        trainer(tiny_bert_dir, tmp_path, momentum=0.9, loss="supcon")
    assert trainer(tiny_bert_dir, tmp_path, momentum=0.9, loss="npair").contrastive_step.momentum_encoder is not None


def test_the_queue_keeps_full_embeddings_under_matryoshka_and_gte(tiny_bert_dir, tmp_path):
    """The queue holds the full embeddings; each Matryoshka term cuts them like the batch's own."""
    trainer_ = trainer(tiny_bert_dir, tmp_path, queue_size=10, momentum=0.9, matryoshka_dims=[32, 8],
                       loss_kwargs='{"directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]}')
    trainer_.train()
    losses = [entry["loss"] for entry in trainer_.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert trainer_.contrastive_step.queue.embeddings.shape == (10, 32)
