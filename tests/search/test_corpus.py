"""Corpus files: BEIR's corpus.jsonl and plain text, one join rule for title and text, errors that name
the file and line."""

from __future__ import annotations

import json

import pytest

from contrasent.data.files import DataFormatError
from contrasent.evaluation import Document
from contrasent.search import join_title, read_corpus


def test_read_corpus_reads_beir_and_plain_text(data_dir, tmp_path) -> None:
    ids, texts = read_corpus(data_dir / "beir_scifact" / "corpus.jsonl")
    assert len(ids) == 5183 and ids[0] == "4983"
    assert texts[0].startswith("Microstructural development of human newborn cerebral white matter")
    assert "Alterations of the architecture" in texts[0]
    (tmp_path / "lines.txt").write_text("first\n\n  second \r\n")
    assert read_corpus(tmp_path / "lines.txt") == ([0, 2], ["first", "second"])  # ids: line numbers from 0


@pytest.mark.parametrize(
    ("title", "text", "joined"),
    [
        ("Cells", "Energy. ", "Cells Energy."),
        ("", "  Stocks fell.", "Stocks fell."),
        (None, "\tNo title.\n", "No title."),
        (" Space ", "Rockets.", "Space  Rockets."),  # inner spaces stay, as BEIR keeps them
        ("Only a title", "", "Only a title"),
    ],
)
def test_one_join_rule_for_every_reader(tmp_path, title, text, joined) -> None:
    record = {"_id": "d1", "text": text} if title is None else {"_id": "d1", "title": title, "text": text}
    (tmp_path / "corpus.jsonl").write_text(json.dumps(record) + "\n")
    assert join_title(title, text) == joined
    assert read_corpus(tmp_path / "corpus.jsonl") == (["d1"], [joined])
    assert Document(title or "", text).joined() == joined  # contrasent evaluate's documents


def test_ids_and_fields(tmp_path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": 7, "body": "b", "head": "h"}\n\n{"id": 8, "body": "c"}\n')
    assert read_corpus(path, text_field="body", title_field="head") == ([7, 8], ["h b", "c"])
    assert read_corpus(path, text_field="body", title_field=None) == ([7, 8], ["b", "c"])
    path.write_text('{"text": "x"}\n{"text": "y"}\n')
    assert read_corpus(path) == ([0, 1], ["x", "y"])  # no id field: line numbers from 0


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ('{"text": "ok"}\n{"title": "no text"}\n', {}, r"bad.jsonl, line 2: expected an object with a string 'text'"),
        ('{"text": "ok"}\n{"text": "a", \n', {}, r"bad.jsonl, line 2: not valid JSON"),
        ('["text"]\n', {}, r"bad.jsonl, line 1: expected a JSON object, got list"),
        ('{"text": "a", "title": 3}\n', {}, r"bad.jsonl, line 1: the 'title' field must be a string, got int"),
        ('{"text": "a", "key": 1}\n{"text": "b"}\n', {"id_field": "key"}, r"bad.jsonl, line 2: no 'key' field"),
        ('{"text": "ok"}\n{"text": "abc\\ud800"}\n', {},
         r"bad.jsonl, line 2, field 'text' holds a lone surrogate U\+D800 at character 3"),
        ('{"text": "ok", "title": "\\udfff"}\n', {}, r"bad.jsonl, line 1, field 'title' holds a lone surrogate"),
    ],
)
def test_bad_corpus_files_name_file_and_line(tmp_path, content, options, message) -> None:
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_corpus(tmp_path / "bad.jsonl", **options)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ('{"_id": "d1", "text": "a"}\n\n{"_id": "d2", "text": "b"}\n{"_id": "d1", "text": "c"}\n', ValueError,
         r"ids.jsonl: duplicate id 'd1' at line 4 and line 1; ids must be unique"),
        ('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n{"id": 2, "text": "c"}\n{"id": 2, "text": "d"}\n',
         ValueError, r"duplicate id 1 at line 2 and line 1 \(2 duplicates in all\)"),
        ('{"_id": "d1", "text": "a"}\n{"_id": null, "text": "b"}\n', TypeError,
         r"ids.jsonl, line 2: an id must be a str or an int, got None"),
        ('{"_id": 1.5, "text": "a"}\n', TypeError, r"ids.jsonl, line 1: an id must be a str or an int, got 1.5"),
        ('{"_id": ["d"], "text": "a"}\n', TypeError, r"ids.jsonl, line 1: an id must be a str or an int, got \['d'\]"),
        ('{"_id": true, "text": "a"}\n', TypeError, r"ids.jsonl, line 1: an id must be a str or an int, got True"),
    ],
)
def test_corpus_ids_are_unique_strings_or_integers(tmp_path, content, error, message) -> None:
    """Ids that repeat or that JSON cannot keep as they are would make an index lie (issue #15, class 5):
    refused where the corpus is read, naming its lines."""
    (tmp_path / "ids.jsonl").write_text(content)
    with pytest.raises(error, match=message):
        read_corpus(tmp_path / "ids.jsonl")


def test_missing_corpus(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"corpus file .*absent.jsonl not found"):
        read_corpus(tmp_path / "absent.jsonl")
    with pytest.raises(FileNotFoundError, match=r"corpus file .* is a folder"):
        read_corpus(tmp_path)
