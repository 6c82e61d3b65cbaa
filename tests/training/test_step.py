"""`ContrastiveStep` without the Trainer: a plain PyTorch loop makes `ContrastiveTrainer`'s updates.

Both runs: float64 tiny BERT with dropout off (so no random masks differ), plain SGD at a constant
learning rate, no clipping or decay, 2 steps on a batch that is the whole dataset (so the Trainer's
shuffling changes only the row order inside the batch, to which every loss is invariant).
"""

from __future__ import annotations

import datasets
import pytest
import torch
from step_data import small_dataset

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.losses import get_loss
from contrasent.models.padding_free import supports_padding_free
from contrasent.training import ContrastiveStep

ROWS, STEPS, LR, TAU, MAX_LENGTH = 8, 2, 0.5, 0.1, 16


def encoder(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(
        tiny_bert_dir, dtype=torch.float64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


def trainer_weights(tiny_bert_dir, tmp_path, data: datasets.Dataset, mini_batch_size: int | None) -> dict:
    model = encoder(tiny_bert_dir)
    args = ContrastiveTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
        max_steps=STEPS, per_device_train_batch_size=ROWS, optim="sgd", learning_rate=LR,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, temperature=TAU,
        max_seq_length=MAX_LENGTH, mini_batch_size=mini_batch_size, dataloader_num_workers=0, seed=0,
    )
    ContrastiveTrainer(model=model, args=args, train_dataset=data).train()
    return model.state_dict()


def plain_loop_weights(tiny_bert_dir, data: datasets.Dataset, loss_name: str, mini_batch_size: int | None) -> dict:
    model = encoder(tiny_bert_dir)
    collator = ContrastiveCollator(model.tokenizer, infer_layout(data.column_names), MAX_LENGTH,
                                   chunk_size=mini_batch_size, padding_free=supports_padding_free(model))
    step = ContrastiveStep(get_loss(loss_name, temperature=TAU), cache_gradients=mini_batch_size is not None)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    batch = collator([data[i] for i in range(len(data))])
    model.train()
    for _ in range(STEPS):
        step(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.state_dict()


@pytest.mark.parametrize(("kind", "loss_name", "mini_batch_size"), [
    ("triplets", "infonce", None), ("labels", "supcon", None), ("triplets", "infonce", 5), ("short", "infonce", None),
    ("short", "infonce", 5),
])
def test_plain_loop_makes_the_trainers_updates(tiny_bert_dir, tmp_path, kind, loss_name, mini_batch_size):
    data = small_dataset(kind, ROWS)
    before = encoder(tiny_bert_dir).state_dict()
    expected = trainer_weights(tiny_bert_dir, tmp_path, data, mini_batch_size)
    got = plain_loop_weights(tiny_bert_dir, data, loss_name, mini_batch_size)
    moved = [name for name in expected if not torch.equal(expected[name], before[name])]
    assert len(moved) > 10  # the steps changed the backbone, so equal weights mean equal updates
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)
