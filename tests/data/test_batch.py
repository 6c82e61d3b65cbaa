"""`Batch`: moved to a device as a whole, and readable by `transformers.Trainer`'s loop as a dict would be."""

from __future__ import annotations

import datasets
import torch
from accelerate.utils import send_to_device

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data.batch import Batch


def make_batch(**fields) -> Batch:
    chunks = [{"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": torch.ones(2, 3, dtype=torch.long)},
              {"input_ids": torch.ones(1, 5, dtype=torch.long), "sequence_lengths": torch.tensor([2, 3])}]
    return Batch(chunks=chunks, restore=torch.arange(4), num_views=2, text_ids=torch.zeros(2, 2, dtype=torch.long),
                 **fields)


def tensors(batch: Batch) -> list[torch.Tensor]:
    values = [batch.restore, batch.text_ids, batch.class_labels, batch.scores, batch.row_ids]
    return [t for chunk in batch.chunks for t in chunk.values()] + [t for t in values if t is not None]


def test_accelerate_moves_every_tensor_through_to():
    batch = make_batch(class_labels=torch.tensor([0, 1]), row_ids=torch.tensor([4, 5]))
    moved = send_to_device(batch, "meta", non_blocking=True)  # the call accelerate's data loader makes
    assert isinstance(moved, Batch) and moved.num_views == 2 and moved.scores is None
    assert len(tensors(moved)) == 8 and all(t.device.type == "meta" for t in tensors(moved))
    assert all(t.device.type == "cpu" for t in tensors(batch))  # a copy: the original stays


def test_pin_memory_pins_every_tensor(monkeypatch):
    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: pinned.append(t) or t.clone())
    batch = make_batch(scores=torch.tensor([0.5, 1.0]))
    assert isinstance(batch.pin_memory(), Batch) and len(pinned) == len(tensors(batch)) == 7


def test_the_trainers_probes_find_what_a_dict_without_those_keys_shows():
    batch = make_batch(class_labels=torch.tensor([0, 1]))
    assert len(batch) == 2  # rows: not empty
    assert "class_labels" in batch and "scores" not in batch and "chunks" in batch
    assert "labels" not in batch and "input_ids" not in batch and "to" not in batch and 3 not in batch


def test_trainer_loop_accepts_batches(tiny_bert_dir, tmp_path, monkeypatch):
    data = datasets.Dataset.from_dict({"anchor": [f"q {i}" for i in range(4)], "positive": [f"d {i}" for i in range(4)]})
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no",
                                        per_device_train_batch_size=2, max_steps=2, disable_tqdm=True)
    trainer = ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args, train_dataset=data)
    moves = []
    to = Batch.to
    monkeypatch.setattr(Batch, "to", lambda self, *a, **k: moves.append(a) or to(self, *a, **k))
    batches, num_items = trainer.get_batch_samples(iter(trainer.get_train_dataloader()), 2, args.device)
    assert len(batches) == 2 and all(isinstance(b, Batch) for b in batches) and num_items is None
    assert len(moves) == 2  # accelerate's loader moved each batch to the device
    assert trainer.floating_point_ops(batches[0]) == 0
    assert trainer.train().global_step == 2
