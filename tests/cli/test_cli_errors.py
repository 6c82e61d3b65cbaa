"""Every ``contrasent`` subcommand ends a user's mistake in one line naming the culprit, exit status 1 or 2,
without a traceback (issue #15, class 6), and finds it before the work it would spoil: a flag when parsed,
a query, a corpus, an ``--index`` or ``--output`` that would replace what is not ours (class 2) before the
model loads and the corpus is encoded.

The model ``not/loaded`` does not exist: a test that names it and gets its expected message proves that
the mistake was found before any model was loaded.
"""

from __future__ import annotations

import errno
import json
import shutil
import socket
import sys
from pathlib import Path

import pytest

from contrasent.cli import main


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("A cat sleeps on the sofa.\nStock markets fell sharply today.\n", encoding="utf-8")
    return path


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"anchor": f"question {i}", "positive": f"answer {i}"}) + "\n"
                            for i in range(4)), encoding="utf-8")
    return path


def one_line_error(capsys: pytest.CaptureFixture, command: str) -> str:
    """The error line, after checking that it is the last thing printed. (``main`` returned a status, so no
    exception escaped it: no traceback of ours was printed.)"""
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"contrasent {command}: error: "), err
    return last


# --------------------------------------------------------------------------------------------------------
# Numeric flags are checked when parsed, naming the flag
# --------------------------------------------------------------------------------------------------------
FLAG_CASES = [
    ("search", ["--top-k", "0"], "argument --top-k: expected a positive integer, got '0'"),
    ("search", ["--top-k", "-3"], "argument --top-k: expected a positive integer, got '-3'"),
    ("search", ["--top-k", "1" * 5000], "argument --top-k: expected a positive integer"),
    ("search", ["--batch-size", "0"], "argument --batch-size: expected a positive integer, got '0'"),
    ("serve", ["--port", "70000"], "argument --port: expected a port number from 0 to 65535, got '70000'"),
    ("serve", ["--port", "-1"], "argument --port: expected a port number"),
    ("serve", ["--max-top-k", "0"], "argument --max-top-k: expected a positive integer, got '0'"),
    ("serve", ["--max-texts", "0"], "argument --max-texts: expected a positive integer"),
    ("serve", ["--max-text-chars", "-5"], "argument --max-text-chars: expected a positive integer"),
    ("serve", ["--max-body-bytes", "0"], "argument --max-body-bytes: expected a positive integer"),
    ("serve", ["--batch-size", "-1"], "argument --batch-size: expected a positive integer"),
    ("mine", ["--num-negatives", "0"], "argument --num-negatives: expected a positive integer, got '0'"),
    ("mine", ["--batch-size", "0"], "argument --batch-size: expected a positive integer"),
    ("mine", ["--max-seq-length", "0"], "argument --max-seq-length: expected a positive integer"),
    ("mine", ["--range", "-1", "10"], "argument --range: expected an integer >= 0, got '-1'"),
    ("mine", ["--margin", "nan"], "argument --margin: expected a finite number >= 0, got 'nan'"),
    ("mine", ["--margin", "inf"], "argument --margin: expected a finite number >= 0, got 'inf'"),
    ("mine", ["--margin", "-0.1"], "argument --margin: expected a finite number >= 0, got '-0.1'"),
    ("mine", ["--relative-margin", "1"], "argument --relative-margin: expected a number from 0 (included) to 1"),
    ("mine", ["--relative-margin", "nan"], "argument --relative-margin: expected a number from 0"),
    ("mine", ["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    ("evaluate", ["--k", "0"], "argument --k: expected a positive integer, got '0'"),
    ("evaluate", ["--k", "10", "-1"], "argument --k: expected a positive integer, got '-1'"),
    ("evaluate", ["--batch-size", "0"], "argument --batch-size: expected a positive integer"),
]
BASE = {
    "search": ["search", "not/loaded", "--corpus", "c.txt", "q"],
    "serve": ["serve", "not/loaded", "--corpus", "c.txt"],
    "mine": ["mine", "d.jsonl", "--model", "not/loaded", "--output", "o.jsonl"],
    "evaluate": ["evaluate", "not/loaded", "--sts", "data"],
}


@pytest.mark.parametrize(("command", "flags", "message"), FLAG_CASES, ids=[" ".join(c[1])[:30] for c in FLAG_CASES])
def test_numeric_flags_are_checked_when_parsed(capsys, command, flags, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*BASE[command], *flags])
    assert exit_info.value.code == 2
    assert message in one_line_error(capsys, command)


def test_a_rank_range_that_is_empty_is_refused_before_the_data_is_read(capsys) -> None:
    assert main([*BASE["mine"], "--range", "5", "2"]) == 2
    assert "--range MIN_RANK MAX_RANK: expected MIN_RANK < MAX_RANK, got 5 2" in one_line_error(capsys, "mine")


# --------------------------------------------------------------------------------------------------------
# search / serve: queries, corpus, --index (classes 2 and 5)
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "message"), [
    ("   ", "query 2 is empty or only whitespace ('   '): there is nothing to search for"),
    ("", "query 2 is empty or only whitespace"),
    ("\t\n", "query 2 is empty or only whitespace"),
    ("\u200b", "query 2 is empty or only whitespace"),
    ("caf\udce9", "query 2 holds a lone surrogate U+DCE9 at character 3 (the byte 0xe9, not UTF-8)"),
])
def test_a_query_that_says_nothing_is_refused_first(capsys, corpus, query, message) -> None:
    assert main(["search", "not/loaded", "--corpus", str(corpus), "fine query", query]) == 2
    assert message in one_line_error(capsys, "search")


@pytest.mark.parametrize("command", ["search", "serve"])
@pytest.mark.parametrize(("content", "name"), [("", "empty.jsonl"), ("\n\n  \n", "blank.txt")])
def test_a_corpus_without_documents_is_refused_before_the_model_loads(capsys, tmp_path, command, content, name) -> None:
    empty = tmp_path / name
    empty.write_text(content, encoding="utf-8")
    queries = ["q"] if command == "search" else []
    assert main([command, "not/loaded", "--corpus", str(empty), *queries]) == 1
    assert f"corpus file {empty} holds no documents" in one_line_error(capsys, command)


def make_file(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    return tmp_path / "notes.txt"


def make_foreign_folder(tmp_path: Path) -> Path:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    return tmp_path / "photos"


@pytest.mark.parametrize("command", ["search", "serve"])
@pytest.mark.parametrize(("make_target", "message"), [
    (make_file, "notes.txt is a file; refusing to replace it with a search index folder"),
    (make_foreign_folder, "photos is a folder of other files (1 entry: cat.jpg) and holds no index.json"),
    (lambda tmp: make_file(tmp) / "index", "notes.txt is a file, not a folder"),
    (lambda tmp: Path("/proc/contrasent-index"), "cannot save the index to /proc/contrasent-index: /proc cannot be written"),
])
def test_an_index_that_would_replace_what_is_not_an_index_is_refused_before_encoding(
    capsys, tmp_path, corpus, command, make_target, message
) -> None:
    target = make_target(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    queries = ["q"] if command == "search" else []
    assert main([command, "not/loaded", "--corpus", str(corpus), "--index", str(target), *queries]) == 1
    assert message in one_line_error(capsys, command)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing moved, nothing hidden left
    if (tmp_path / "notes.txt").exists():
        assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_serve_finds_a_port_in_use_before_encoding(capsys, corpus) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "not/loaded", "--corpus", str(corpus), "--port", str(port)]) == 1
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in one_line_error(capsys, "serve")


# --------------------------------------------------------------------------------------------------------
# mine: the rows, the corpus, --output (classes 2 and 6)
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "message"), [
    ([{"anchor": "q", "positive": None}, {"anchor": "r", "positive": "s"}],
     "pairs.jsonl, line 1, column 'positive': expected a string, got NoneType (None)"),
    ([{"anchor": "q", "positive": "p"}, {"anchor": None, "positive": "s"}],
     "pairs.jsonl, line 2, column 'anchor': expected a string, got NoneType (None)"),
    ([{"anchor": "q", "positive": "p"}, {"anchor": "r", "positive": "  "}],
     "pairs.jsonl, line 2, column 'positive': empty or whitespace-only text"),
    ([{"anchor": "q", "positive": 7}, {"anchor": "r", "positive": 8}],
     "pairs.jsonl: column 'positive' holds numbers (7, 8), not texts"),
    ([{"anchor": "only one column"}], "pairs.jsonl needs an anchor and a positive column, has ['anchor']"),
])
def test_mine_names_a_bad_row_before_the_model_loads(capsys, tmp_path, rows, message) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert main(["mine", str(data), "--model", "not/loaded", "--output", str(tmp_path / "out.jsonl")]) == 1
    assert message in one_line_error(capsys, "mine")


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty.jsonl: the file holds no rows"),
    ("\n\n", "empty.jsonl: the file holds no rows"),
])
def test_mine_on_an_empty_file_is_one_line(capsys, tmp_path, content, message) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text(content, encoding="utf-8")
    assert main(["mine", str(data), "--model", "not/loaded", "--output", str(tmp_path / "out.jsonl")]) == 1
    assert message in one_line_error(capsys, "mine")


def test_mine_refuses_an_empty_corpus_before_the_model_loads(capsys, tmp_path, pairs) -> None:
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    assert main(["mine", str(pairs), "--model", "not/loaded", "--output", str(tmp_path / "out.jsonl"),
                 "--corpus", str(tmp_path / "empty.txt")]) == 1
    assert "corpus file" in one_line_error(capsys, "mine")


@pytest.mark.parametrize(("make_output", "message"), [
    (lambda tmp: make_file(tmp), "--output "),  # a save_to_disk folder would replace the file
    (lambda tmp: make_foreign_folder(tmp), "is a folder that holds other files: the save_to_disk folder would be mixed"),
    (lambda tmp: make_foreign_folder(tmp) / ".." / "photos.jsonl" if (tmp / "photos.jsonl").mkdir() is None else None,
     "photos.jsonl is a folder; a .jsonl output is a file"),
    (lambda tmp: make_file(tmp) / "out.jsonl", "notes.txt is a file, not a folder"),
    (lambda tmp: Path("/proc/mined.jsonl"), "cannot save the mined rows to /proc/mined.jsonl: /proc cannot be written"),
])
def test_mine_checks_its_output_before_any_work(capsys, tmp_path, pairs, make_output, message) -> None:
    output = make_output(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["mine", str(pairs), "--model", "not/loaded", "--output", str(output)]) == 1
    assert message in one_line_error(capsys, "mine")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_mine_names_its_output_when_the_disk_is_full(monkeypatch, capsys, tmp_path, pairs, tiny_bert_dir) -> None:
    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("contrasent.data.files.save_training_file", full_disk)
    output = tmp_path / "out.jsonl"
    assert main(["mine", str(pairs), "--model", str(tiny_bert_dir), "--output", str(output),
                 "--num-negatives", "1"]) == 1
    assert f"cannot write the mined rows to {output}: No space left on device" in one_line_error(capsys, "mine")


def test_mine_checks_its_cache_folder_before_any_work(capsys, tmp_path, pairs) -> None:
    notes = make_file(tmp_path)
    assert main(["mine", str(pairs), "--model", "not/loaded", "--output", str(tmp_path / "out.jsonl"),
                 "--cache-dir", str(notes)]) == 1
    assert "cannot save the embedding cache to" in one_line_error(capsys, "mine")
    assert notes.read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize(("make_output", "message"), [
    (lambda tmp: tmp, "is a folder; the results are a JSON file: name one"),
    (lambda tmp: make_file(tmp) / "results.json", "notes.txt is a file, not a folder"),
    (lambda tmp: Path("/proc/results.json"), "cannot save the results to /proc/results.json"),
])
def test_evaluate_checks_its_output_before_the_model_loads(capsys, tmp_path, make_output, message) -> None:
    assert main(["evaluate", "not/loaded", "--retrieval", str(beir_folder(tmp_path)),
                 "--output", str(make_output(tmp_path))]) == 1
    assert message in one_line_error(capsys, "evaluate")


@pytest.mark.parametrize(("argv", "command"), [
    (["search", "not/loaded", "--corpus", "{corpus}", "--backend", "faiss", "q"], "search"),
    (["serve", "not/loaded", "--corpus", "{corpus}", "--backend", "faiss", "--port", "0"], "serve"),
    (["mine", "{pairs}", "--model", "not/loaded", "--output", "{out}", "--faiss"], "mine"),
])
def test_faiss_that_is_not_installed_is_found_before_the_model_loads(
    monkeypatch, capsys, tmp_path, corpus, pairs, argv, command
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # importing it raises ImportError
    paths = {"corpus": corpus, "pairs": pairs, "out": tmp_path / "out.jsonl"}
    assert main([arg.format(**paths) for arg in argv]) == 2
    assert "needs the faiss package: pip install 'contrasent[faiss]'" in one_line_error(capsys, command)


# --------------------------------------------------------------------------------------------------------
# A model folder that does not load: one line naming it, from every command that loads a model
# --------------------------------------------------------------------------------------------------------
def truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


BREAKAGES = {
    "truncated weights": truncate_weights,
    "empty weights": lambda folder: (folder / "model.safetensors").write_bytes(b""),
    "garbage weights": lambda folder: (folder / "model.safetensors").write_bytes(b"not safetensors" * 10),
    "broken tokenizer.json": lambda folder: (folder / "tokenizer.json").write_text("{broken", encoding="utf-8"),
    "unknown model type": lambda folder: (folder / "config.json").write_text('{"model_type": "nonexistent"}'),
}


@pytest.fixture(params=list(BREAKAGES))
def broken_model(request, tiny_bert_dir, tmp_path) -> Path:
    folder = Path(shutil.copytree(tiny_bert_dir, tmp_path / "broken-model"))
    for path in folder.iterdir():
        path.chmod(0o644)  # the shared copy is read-only
    BREAKAGES[request.param](folder)
    return folder


@pytest.mark.parametrize("command", ["search", "serve", "mine", "evaluate"])
def test_a_model_that_does_not_load_is_one_line_naming_it(capsys, tmp_path, corpus, pairs, broken_model, command) -> None:
    model = str(broken_model)
    argv = {
        "search": ["search", model, "--corpus", str(corpus), "q"],
        "serve": ["serve", model, "--corpus", str(corpus), "--port", "0"],
        "mine": ["mine", str(pairs), "--model", model, "--output", str(tmp_path / "out.jsonl")],
        "evaluate": ["evaluate", model, "--retrieval", str(beir_folder(tmp_path))],
    }[command]
    assert main(argv) == 1
    assert model in one_line_error(capsys, command)


def beir_folder(root: Path) -> Path:
    folder = root / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "a cat"}\n', encoding="utf-8")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "cats"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    return folder


# --------------------------------------------------------------------------------------------------------
# The convention itself
# --------------------------------------------------------------------------------------------------------
def failing_load(error: BaseException):
    def from_pretrained(*_args, **_kwargs):
        raise error
    return from_pretrained


@pytest.mark.parametrize(("error", "status", "message"), [
    (OSError("could not reach the Hub\nNetwork is unreachable.\n  Check your connection."), 1,
     "could not reach the Hub Network is unreachable. Check your connection."),
    (TypeError("a null text in the data"), 1, "a null text in the data"),
    (RuntimeError("size mismatch for weight"), 1, "cannot load the model some/model: RuntimeError: size mismatch"),
    (KeyError("hidden_size"), 1, "cannot load the model some/model: KeyError: 'hidden_size'"),
])
def test_an_error_is_one_line_whatever_its_message(monkeypatch, capsys, corpus, error, status, message) -> None:
    monkeypatch.setattr("contrasent.models.encoder.SentenceEncoder.from_pretrained", failing_load(error))
    assert main(["search", "some/model", "--corpus", str(corpus), "q"]) == status
    assert message in one_line_error(capsys, "search")


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, corpus) -> None:
    monkeypatch.setattr("contrasent.models.encoder.SentenceEncoder.from_pretrained", failing_load(KeyboardInterrupt()))
    assert main(["search", "some/model", "--corpus", str(corpus), "q"]) == 130
    assert capsys.readouterr().err.strip() == "contrasent search: interrupted"


def test_debug_shows_the_traceback(monkeypatch, corpus) -> None:
    monkeypatch.setattr("contrasent.models.encoder.SentenceEncoder.from_pretrained",
                        failing_load(ValueError("the real reason")))
    with pytest.raises(ValueError, match="the real reason"):
        main(["search", "some/model", "--corpus", str(corpus), "q", "--debug"])
