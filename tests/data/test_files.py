"""Training file readers and the column conventions: good files load, bad ones are named precisely."""

from __future__ import annotations

import json

import pytest

from contrasent.data import infer_layout, load_training_file
from contrasent.data.files import DataFormatError, save_training_file
from contrasent.data.validation import validate_training_data


def test_txt_one_sentence_per_line_skipping_blank_lines(tmp_path, caplog) -> None:
    path = tmp_path / "s.txt"
    path.write_text("first line\n\nsecond line\r\n", encoding="utf-8")
    dataset = load_training_file(path)
    assert dataset.column_names == ["text"] and dataset["text"] == ["first line", "second line"]
    assert "skipped 1 blank line" in caplog.text


def test_csv_tsv_jsonl_with_labels_and_scores(tmp_path) -> None:
    (tmp_path / "a.csv").write_text('anchor,positive\n"a, with comma",b\n')
    (tmp_path / "b.tsv").write_text("s1\ts2\tscore\nx\ty\t4.5\n")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "t", "label": "3"}) + "\n")
    assert load_training_file(tmp_path / "a.csv")[0] == {"anchor": "a, with comma", "positive": "b"}
    assert load_training_file(tmp_path / "b.tsv")[0] == {"s1": "x", "s2": "y", "score": 4.5}
    assert load_training_file(tmp_path / "c.jsonl")[0] == {"text": "t", "label": 3}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.txt", b"ok\nbad \xff byte\n", r"bad.txt, line 2: byte b'\\xff' at column 5 is not valid UTF-8"),
        ("rows.csv", b"a,b\n1,2\n3\n", r"rows.csv, line 3: 1 field\(s\), expected 2 as in the header \['a', 'b'\]"),
        ("quote.csv", b'a,b\n"x" y,2\n', r"quote.csv, line 2: malformed row .*stray quotes"),
        ("label.csv", b"text,label\nx,1.5\n", r"label.csv, line 2, column 'label': '1.5' is not an integer class label"),
        ("score.tsv", b"s1\ts2\tscore\nx\ty\thigh\n", r"score.tsv, line 2, column 'score': 'high' is not a number"),
        ("keys.jsonl", b'{"text": "a"}\n{"txt": "b"}\n', r"keys.jsonl, line 2: keys \['txt'\] differ"),
        ("broken.jsonl", b'{"text": "a"\n', r"broken.jsonl, line 1: not valid JSON"),
        ("empty.csv", b"", r"empty.csv: the file is empty"),
        ("header.csv", b"a,b\n", r"header.csv: the file holds no rows"),
        ("data.xlsx", b"x", r"unsupported file type '.xlsx'"),
        ("array.json", b'[{"text": "a"},\n {"txt": "b"}]', r"array.json, line 2: keys \['txt'\] differ"),
        ("scalar.json", b'[{"text": "a"}, 3]', r"scalar.json, line 1: expected a JSON object, got int"),
        ("broken.json", b'[{"text": "a"},\n {"text": }]', r"broken.json, line 2: not valid JSON"),
        ("lines.json", b'{"text": "a"}\n{"text": "b"}\n{"text"\n', r"lines.json, line 3: not valid JSON"),
    ],
)
def test_bad_files_are_named_precisely(tmp_path, name, content, message) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_training_file(tmp_path / name)


def test_bad_content_is_a_data_format_error(tmp_path) -> None:
    (tmp_path / "rows.csv").write_text("a,b\n1\n")
    with pytest.raises(DataFormatError, match=r"rows.csv, line 2"):
        load_training_file(tmp_path / "rows.csv")


def test_json_holds_an_array_or_json_lines(tmp_path) -> None:
    (tmp_path / "array.json").write_text('[{"anchor": "a", "positive": "b"},\n {"anchor": "c", "positive": "d"}]')
    (tmp_path / "lines.json").write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d"}\n')
    (tmp_path / "one.json").write_text('{"anchor": "a", "positive": "b"}\n')
    for name in ("array.json", "lines.json"):
        assert load_training_file(tmp_path / name).to_dict() == {"anchor": ["a", "c"], "positive": ["b", "d"]}
    assert load_training_file(tmp_path / "one.json").to_dict() == {"anchor": ["a"], "positive": ["b"]}


@pytest.mark.parametrize("name", ["out.jsonl", "out.json", "out.csv", "out.tsv", "out.parquet", "out_folder"])
def test_saved_files_load_back(tmp_path, name) -> None:
    import datasets

    rows = {"anchor": ["a, \"quoted\"", "tab\there"], "positive": ["b", "ü"], "label": [1, 0]}
    save_training_file(datasets.Dataset.from_dict(rows), tmp_path / name)
    assert (tmp_path / name).is_dir() == (name == "out_folder")
    assert load_training_file(tmp_path / name).to_dict() == rows


def test_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_training_file(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("columns", "mode", "texts"),
    [
        (["text"], "unsupervised", ("text",)),
        (["sent0", "sent1"], "pairs", ("sent0", "sent1")),
        (["sent0", "sent1", "hard_neg"], "pairs", ("sent0", "sent1", "hard_neg")),
        (["text", "label"], "labels", ("text",)),
        (["s1", "s2", "label"], "pair_labels", ("s1", "s2")),
        (["score", "s1", "s2"], "scored_pairs", ("s1", "s2")),
    ],
)
def test_layout_from_columns(columns, mode, texts) -> None:
    layout = infer_layout(columns)
    assert (layout.mode, layout.text_columns) == (mode, texts)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["label"], "no text column"),
        (["a", "b", "c", "label"], "goes with 1 text column"),
        (["a", "score"], "goes with exactly 2 text columns"),
        (["a", "label", "score"], "more than one label/score column"),
    ],
)
def test_impossible_layouts(columns, message) -> None:
    with pytest.raises(ValueError, match=message):
        infer_layout(columns, source="train.csv")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"text": ["ok", None]}, r"train.csv\[1\], column 'text': expected a string, got NoneType"),
        ({"text": ["ok", "   "]}, r"train.csv\[1\], column 'text': empty or whitespace-only text"),
        ({"anchor": ["a", None], "positive": ["b", "c"], "negative_1": [None, "d"]},
         r"train.csv\[1\], column 'anchor': expected a string, got NoneType"),
        ({"anchor": ["a", "b"], "positive": ["c", None], "negative_1": ["d", None]},
         r"train.csv\[1\], column 'positive': expected a string, got NoneType"),
        ({"anchor": ["a", "b"], "positive": ["c", "d"], "negative_1": [None, " "]},
         r"train.csv\[1\], column 'negative_1': empty or whitespace-only text"),
        ({"text": ["a", "b"], "label": [1, 2.5]}, r"train.csv\[1\], column 'label': expected an integer label, got float"),
        ({"s1": ["a"], "s2": ["b"], "label": [2]}, r"train.csv\[0\], column 'label': expected 1 \(similar\) or 0"),
        ({"s1": ["a"], "s2": ["b"], "score": [float("nan")]}, r"train.csv\[0\], column 'score': expected a finite number"),
        ({"text": []}, r"the dataset is empty"),
    ],
)
def test_validation_names_row_and_column(rows, message) -> None:
    import datasets

    dataset = datasets.Dataset.from_dict(rows)
    with pytest.raises((TypeError, ValueError), match=message):
        validate_training_data(dataset, infer_layout(dataset.column_names), source="train.csv")


def test_hard_negative_columns_may_lack_texts() -> None:
    """Rows short of mined negatives (None) train with the negatives they have; a row may have none."""
    import datasets

    dataset = datasets.Dataset.from_dict({
        "anchor": ["a", "b", "c"], "positive": ["d", "e", "f"],
        "negative_1": ["g", None, None], "negative_2": ["h", "i", None],
    })
    validate_training_data(dataset, infer_layout(dataset.column_names), source="train.csv")
