"""Bad input through the public entry points: each error names the argument, row or column, and what was
expected. (More cases live beside the code they test; RELIABILITY.md lists the whole catalogue.)"""

from __future__ import annotations

import logging

import datasets
import pytest
from transformers import AutoTokenizer, BertConfig, BertModel

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


def arguments(tmp_path, **overrides) -> ContrastiveTrainingArguments:
    values = {"output_dir": str(tmp_path), "max_steps": 1, "per_device_train_batch_size": 4, "report_to": "none",
              "save_strategy": "no", "disable_tqdm": True, **overrides}
    return ContrastiveTrainingArguments(**values)


def trainer_error(encoder, tmp_path, columns: dict, **overrides) -> str:
    with pytest.raises((ValueError, TypeError)) as caught:
        ContrastiveTrainer(model=encoder, args=arguments(tmp_path, **overrides),
                           train_dataset=datasets.Dataset.from_dict(columns))
    return str(caught.value)


def test_tokenizer_of_another_model(tiny_bert_dir) -> None:
    small = BertModel(BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=8))
    with pytest.raises(ValueError, match=r"the tokenizer has \d+ tokens but the model's embedding matrix has "
                                         r"100 rows: the tokenizer does not belong to this model"):
        SentenceEncoder(small, AutoTokenizer.from_pretrained(tiny_bert_dir))


def test_empty_dataset(encoder, tmp_path) -> None:
    assert "train_dataset: the dataset is empty" in trainer_error(encoder, tmp_path, {"text": []})


def test_batch_larger_than_the_dataset(encoder, tmp_path) -> None:
    message = trainer_error(encoder, tmp_path, {"text": ["a", "b", "c"]}, per_device_train_batch_size=8)
    assert "train_dataset has 3 rows, fewer than one batch (per_device_train_batch_size=8 x 1 process(es) = 8)" in message


def test_score_outside_the_declared_range(encoder, tmp_path) -> None:
    columns = {"s1": ["a", "b", "c", "d"], "s2": ["e", "f", "g", "h"], "score": [1.0, 2.0, 7.5, 0.0]}
    message = trainer_error(encoder, tmp_path, columns, score_range=[0.0, 5.0])
    assert "train_dataset[2], column 'score': 7.5 is outside the declared score range [0.0, 5.0]" in message


@pytest.mark.parametrize("labels", [[0, 0, 1, 1], ["0", "0", "1", "1"]])  # as a data set holds them, as csv reads them
def test_misspelled_label_column_is_pointed_out(encoder, tmp_path, labels) -> None:
    message = trainer_error(encoder, tmp_path, {"text": ["a", "b", "c", "d"], "lable": labels})
    assert "train_dataset: column 'lable' holds numbers (" in message and "(did you mean 'label'?)" in message
    assert "it is used as the positive of 'pairs' data (anchor 'text', positive 'lable')" in message


def test_loss_that_the_columns_cannot_feed(encoder, tmp_path) -> None:
    message = trainer_error(encoder, tmp_path, {"a": ["x", "y", "z", "w"], "b": ["p", "q", "r", "s"]}, loss="cosent")
    assert "loss CoSENT takes 'scored_pairs' inputs, which 'pairs' data (columns ['a', 'b']) cannot provide" in message


def test_unknown_loss_lists_valid_names(encoder, tmp_path) -> None:
    message = trainer_error(encoder, tmp_path, {"text": ["a", "b", "c", "d"]}, loss="infonse")
    assert "unknown loss 'infonse'; valid names: infonce, ntxent" in message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temperature": 0.0}, r"--temperature must be a finite number > 0, got 0.0"),
        ({"loss_kwargs": "{margin: 1}"}, r"--loss_kwargs must be a JSON object, got '\{margin: 1\}'"),
        ({"loss_kwargs": "[1]"}, r"--loss_kwargs must be a JSON object, got '\[1\]'"),
        ({"score_range": [5.0, 0.0]}, r"--score_range must be two finite numbers low < high, got \[5.0, 0.0\]"),
        ({"max_seq_length": 0}, r"--max_seq_length must be a positive integer, got 0"),
    ],
)
def test_bad_training_arguments(tmp_path, overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        arguments(tmp_path, **overrides)


def test_overlong_texts_are_truncated_with_one_warning(encoder, caplog) -> None:
    collator = ContrastiveCollator(encoder.tokenizer, infer_layout(["text"]), max_length=8)
    rows = [{"text": "word " * 200}, {"text": "short"}]
    with caplog.at_level(logging.WARNING):
        first = collator(rows)
        collator(rows)
    assert caplog.text.count("texts longer than max_seq_length=8 tokens are truncated") == 1
    assert max(f["input_ids"].shape[1] for f in first.chunks) == 8
