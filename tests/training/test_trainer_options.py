"""`ContrastiveTrainer` options of issue #6: batch samplers and similarity-threshold masking."""

from __future__ import annotations

import datasets
import pytest
import torch

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data.samplers import GroupByLabelBatchSampler, NoDuplicatesBatchSampler
from contrasent.losses.masks import false_negative_mask, similarity_threshold_mask
from contrasent.training.loss_inputs import candidate_inputs


@pytest.fixture(scope="module")
def tiny_model(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


def make_trainer(model, tmp_path, data, **options) -> ContrastiveTrainer:
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                        # a batch never larger than the data (the trainer refuses that)
                                        per_device_train_batch_size=min(4, len(data)), seed=1, **options)
    return ContrastiveTrainer(model=model, args=args, train_dataset=data)


def loader_texts(trainer: ContrastiveTrainer, epoch: int) -> list[list[str]]:
    loader = trainer.get_train_dataloader()
    loader.batch_sampler.set_epoch(epoch)  # what Trainer's loop does before each epoch
    data = trainer.train_dataset
    return [[text for i in batch for text in (data[i]["anchor"], data[i]["positive"])] for batch in loader.batch_sampler]


def test_no_duplicates_sampler_is_used(tiny_model, tmp_path):
    # 8 rows sharing 3 positives: a random batch of 4 would repeat one.
    data = datasets.Dataset.from_dict({"anchor": [f"q{i}" for i in range(8)], "positive": [f"d{i % 4}" for i in range(8)]})
    trainer = make_trainer(tiny_model, tmp_path, data, batch_sampler="no_duplicates")
    assert isinstance(trainer.get_train_dataloader().batch_sampler, NoDuplicatesBatchSampler)
    epochs = [loader_texts(trainer, epoch) for epoch in (0, 1)]
    for batches in epochs:
        assert sorted(t for batch in batches for t in batch if t.startswith("q")) == sorted(data["anchor"])
        assert all(len(batch) == len(set(batch)) for batch in batches)
    assert epochs[0] != epochs[1]
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch.text_ids.shape[0] == 2  # the collator still forms the batch


def test_group_by_label_sampler_is_used(tiny_model, tmp_path):
    data = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(12)], "label": [i % 6 for i in range(12)]})
    trainer = make_trainer(tiny_model, tmp_path, data, batch_sampler="group_by_label")
    loader = trainer.get_train_dataloader()
    assert isinstance(loader.batch_sampler, GroupByLabelBatchSampler)
    for batch in loader:
        counts = torch.bincount(batch.class_labels)
        assert set(counts[counts > 0].tolist()) == {2}


def test_group_by_label_needs_labels(tiny_model, tmp_path):
    data = datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"]})
    with pytest.raises(ValueError, match="group_by_label"):
        make_trainer(tiny_model, tmp_path, data, batch_sampler="group_by_label").get_train_dataloader()


def test_random_sampler_is_trainers_own(tiny_model, tmp_path):
    data = datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"]})
    loader = make_trainer(tiny_model, tmp_path, data).get_train_dataloader()
    assert not isinstance(getattr(loader.batch_sampler, "batch_sampler", loader.batch_sampler),
                          NoDuplicatesBatchSampler | GroupByLabelBatchSampler)


def test_bad_options_are_refused(tmp_path):
    for options, message in (({"batch_sampler": "nope"}, "batch_sampler"), ({"mini_batch_size": 0}, "mini_batch_size"),
                             ({"false_negative_margin": -1.0}, "false_negative_margin")):
        with pytest.raises(ValueError, match=message):
            ContrastiveTrainingArguments(output_dir=str(tmp_path), **options)


def test_similarity_threshold_mask_is_ored_into_the_duplicate_mask(tiny_model, tmp_path):
    data = datasets.Dataset.from_dict({"anchor": ["a", "b", "c"], "positive": ["p", "p", "r"], "negative": ["x", "y", "z"]})
    trainer = make_trainer(tiny_model, tmp_path, data, false_negative_margin=0.1, false_negative_relative_margin=0.2)
    torch.manual_seed(0)
    views = torch.randn(3, 3, 8)
    text_ids = trainer.data_collator([data[i] for i in range(3)]).text_ids
    step = trainer.contrastive_step
    mask = candidate_inputs(step.loss, views, text_ids, step.masking, step.queue)["mask"]
    duplicates = false_negative_mask(text_ids[0], text_ids[1], text_ids[2:].T)
    suspects = similarity_threshold_mask(views[0], views[1], views[2:].transpose(0, 1), margin=0.1, relative_margin=0.2)
    assert torch.equal(mask, duplicates | suspects) and duplicates.any() and suspects.any()
    assert not torch.equal(mask, duplicates) and not torch.equal(mask, suspects)
