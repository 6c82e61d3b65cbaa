"""What a training run records and says: the model card's training facts (what the user set and what matters, as
numbers; nothing internal), and no pinned-memory warning on a CPU."""

from __future__ import annotations

import datasets

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder


def test_the_card_lists_the_settings_that_matter(tiny_bert_dir, tmp_path) -> None:
    data = datasets.Dataset.from_dict({"anchor": [f"q{i}" for i in range(8)], "positive": [f"d{i}" for i in range(8)]})
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_steps=3,
                                        per_device_train_batch_size=4, warmup_steps=1, temperature=0.07,
                                        save_strategy="no", max_seq_length=16)
    trainer = ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args, train_dataset=data)
    trainer.train()
    trainer.save_model(str(tmp_path / "model"))
    card = SentenceEncoder.from_pretrained(tmp_path / "model").card_data
    hyper = card.hyperparameters
    assert card.objective == "InfoNCE on pairs data (columns: anchor, positive)"
    assert hyper["loss"] == "InfoNCE" and hyper["temperature"] == 0.07
    assert hyper["steps"] == 3 and hyper["epochs"] == 1.5 and hyper["batch_size"] == 4
    assert hyper["warmup_steps"] == 1 and isinstance(hyper["warmup_steps"], int)
    assert hyper["training_max_seq_length"] == 16 and hyper["learning_rate"] == args.learning_rate
    assert not {"training", "num_train_epochs", "max_steps", "global_step"} & set(hyper)  # internal or unset
    assert all(value is not None for value in hyper.values())
    readme = (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
    assert "| `temperature` | `0.07` |" in readme and "`training`" not in readme


def test_no_pinned_memory_warning_on_a_cpu(tiny_bert_dir, tmp_path) -> None:
    import warnings

    data = datasets.Dataset.from_dict({"anchor": [f"q{i}" for i in range(4)], "positive": [f"d{i}" for i in range(4)]})
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                        per_device_train_batch_size=2)
    trainer = ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args, train_dataset=data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        next(iter(trainer.get_train_dataloader()))
