"""Bad training files end in one message naming the file and the line an editor shows, never a traceback
from Arrow, and rows are named the same way everywhere (issue #15, class 6)."""

from __future__ import annotations

import json

import datasets
import pytest
import torch

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import infer_layout, load_training_file
from contrasent.data.batch import Batch
from contrasent.data.files import DataFormatError
from contrasent.data.row_sources import RowSource, row_source
from contrasent.data.validation import validate_training_data
from contrasent.training.step import check_finite


def jsonl(*records) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


BAD_FILES = [
    # the example: a nested object in a text field
    ("nested.jsonl", jsonl({"text": "fine"}, {"text": {"title": "a", "body": "b"}}),
     "nested.jsonl, line 2: the value of 'text' is a JSON object; expected a string (a text) or a number"),
    ("array.jsonl", jsonl({"anchor": "q", "positive": ["a", "b"]}),
     "array.jsonl, line 1: the value of 'positive' is a JSON array"),
    ("nested.json", '[{"text": "fine"},\n {"text": {"a": 1}}]\n', "nested.json, line 2: the value of 'text' is a JSON object"),
    ("mixed.jsonl", jsonl({"text": "fine"}, {"text": "also fine"}, {"text": 5}),
     "mixed.jsonl, line 3: the value of 'text' is a number (5) where line 1 holds a string; a column holds one type"),
    ("mixed_bool.jsonl", jsonl({"text": "a", "flag": 1}, {"text": "b", "flag": True}),
     "mixed_bool.jsonl, line 2: the value of 'flag' is a boolean (True) where line 1 holds a number"),
    ("bool_label.jsonl", jsonl({"text": "a", "label": 1}, {"text": "b", "label": True}),
     "bool_label.jsonl, line 2, column 'label': True is not an integer class label"),
    ("mixed_label.jsonl", jsonl({"text": "a", "label": 1}, {"text": "b", "label": "x"}),
     "mixed_label.jsonl, line 2, column 'label': 'x' is not an integer class label"),
    # a row's line, not its index: a header, blank lines and a quoted field over two lines come before it
    ("label.csv", 'text,label\n\n"two\nlines",1\nx,1.5\n', "label.csv, line 5, column 'label': '1.5' is not an integer"),
    ("score.tsv", "s1\ts2\tscore\nx\ty\t1\nx\ty\thigh\n", "score.tsv, line 3, column 'score': 'high' is not a number"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_is_named_with_its_line(tmp_path, name, content, message) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_training_file(tmp_path / name)
    assert message in str(caught.value)


BAD_ROWS = [
    ("blank.csv", 'text\nfirst\n"a quoted\nfield"\nthird\n\n   \n', "blank.csv, line 7, column 'text': empty"),
    ("null.jsonl", jsonl({"text": "a"}, {"text": "b"}) + "\n" + jsonl({"text": None}),
     "null.jsonl, line 4, column 'text': expected a string, got NoneType"),
    ("array.json", '[\n  {"anchor": "a", "positive": "b"},\n  {"anchor": "c",\n   "positive": " "}\n]\n',
     "array.json, line 3, column 'positive': empty or whitespace-only text"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_ROWS, ids=[case[0] for case in BAD_ROWS])
def test_a_bad_row_is_named_by_file_and_line_when_training(tmp_path, tiny_bert_dir, name, content, message) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    dataset = load_training_file(tmp_path / name)
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=1,
                                        report_to="none", save_strategy="no", max_steps=1)
    with pytest.raises((TypeError, ValueError)) as caught:
        ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args, train_dataset=dataset)
    assert message in str(caught.value) and str(tmp_path / name) in str(caught.value)


def test_rows_of_a_data_set_without_lines_are_named_by_index(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("one\n\ntwo\n   \n", encoding="utf-8")
    loaded = load_training_file(tmp_path / "a.txt")
    assert row_source(loaded, "x").row(1) == f"{tmp_path / 'a.txt'}, line 3"
    shuffled = loaded.shuffle(seed=0)  # rows no longer on their lines: named by index, never by a wrong line
    assert row_source(shuffled, "train_dataset").row(1) == "train_dataset[1]"
    first = load_training_file(tmp_path / "a.txt", max_rows=1)
    assert len(first) == 1 and row_source(first, "x").row(0) == f"{tmp_path / 'a.txt'}, line 1"
    in_memory = datasets.Dataset.from_dict({"text": ["ok", " "]})
    with pytest.raises(ValueError, match=r"^train_dataset\[1\], column 'text': empty"):
        validate_training_data(in_memory, infer_layout(["text"]), source="train_dataset")


def test_a_failing_step_names_the_rows_by_file_and_line() -> None:
    batch = Batch(chunks=[], restore=torch.arange(2), num_views=1, text_ids=torch.zeros(1, 2, dtype=torch.long),
                  row_ids=torch.tensor([0, 1]))
    views = torch.tensor([[[1.0], [float("nan")]]])
    rows = RowSource("train.csv", (2, 5))
    with pytest.raises(FloatingPointError, match=r"step 3: bad \(train.csv, line 5\); training stopped"):
        check_finite(views, batch, "bad", 3, rows.rows)
    with pytest.raises(FloatingPointError, match=r"bad \(batch of train.csv, lines 2, 5\)"):
        check_finite(torch.full((1, 1, 1), float("inf")), batch, "bad", None, rows.rows)
