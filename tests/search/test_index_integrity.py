"""Search indexes that cannot lie (issue #15, class 5): a saved index loads only when its files agree; bad
rows, ids, texts and queries are refused where they enter, naming the culprit; searching nothing, or
for nothing, is an error. Saving never replaces what is not an index (class 2)."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from contrasent import SemanticIndex, SentenceEncoder

DOCS = ["A cat sleeps on the sofa.", "Stock markets fell sharply today.", "The recipe needs two eggs.",
        "Dogs love to play fetch.", "Interest rates were raised by the central bank."]
IDS = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory) -> dict[str, Path]:
    """Indexes saved once: cosine (exact), dot, and faiss; each test works on a copy."""
    root = tmp_path_factory.mktemp("saved")
    SemanticIndex.build(DOCS, tiny, ids=IDS).save(root / "cosine")
    SemanticIndex.build(DOCS, tiny, ids=IDS, similarity="dot").save(root / "dot")
    with_faiss = SemanticIndex.build(DOCS, tiny, ids=IDS, backend="faiss")
    with_faiss.search("a first search builds the faiss index, which is then saved")
    with_faiss.save(root / "faiss")
    return {name: root / name for name in ("cosine", "dot", "faiss")}


def copy_of(saved: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved[name], tmp_path / name))


# --------------------------------------------------------------------------------------------------------
# Ways to damage a saved folder (each a function of the folder)
# --------------------------------------------------------------------------------------------------------
def edit_rows(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        rows = np.load(folder / "embeddings.npy")
        np.save(folder / "embeddings.npy", change(rows.copy()))
    return apply


def edit_lines(change: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        lines = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        (folder / "corpus.jsonl").write_text("".join(line + "\n" for line in change(lines)), encoding="utf-8")
    return apply


def edit_metadata(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        metadata = json.loads((folder / "index.json").read_text())
        change(metadata)
        (folder / "index.json").write_text(json.dumps(metadata))
    return apply


def set_row(row: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(rows: np.ndarray) -> np.ndarray:
        rows[row] = value
        return rows
    return change


def reseal(folder: Path) -> None:
    """Record the files' current checksums, as if the damaged index had been saved this way (by a bug, or
    by hand): what is left to catch it are the checks of the contents themselves."""
    metadata = json.loads((folder / "index.json").read_text())
    rows = np.ascontiguousarray(np.load(folder / "embeddings.npy"), dtype=np.float32)
    metadata["checksums"] = {
        "corpus.jsonl": hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest(),
        "embeddings.npy": hashlib.sha256(rows.tobytes()).hexdigest(),
    }
    (folder / "index.json").write_text(json.dumps(metadata))


def swap_ids(lines: list[str]) -> list[str]:
    """The last line takes the first line's id: a duplicate id."""
    last = json.loads(lines[-1])
    last["id"] = json.loads(lines[0])["id"]
    return [*lines[:-1], json.dumps(last)]


def with_record(position: int, record: str) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        lines[position] = record
        return lines
    return change


CHANGED = "has changed since the index was saved"
# (name, index kind, damage, reseal, the message's pattern)
DAMAGES = [
    ("nan row", "cosine", edit_rows(set_row(2, np.nan)), False, rf"embeddings.npy {CHANGED}"),
    ("nan row, sealed", "cosine", edit_rows(set_row(2, np.nan)), True,
     r"embeddings.npy: row 2 \(document 'c'\) holds NaN or infinite values"),
    ("inf row, sealed", "dot", edit_rows(set_row(4, np.inf)), True, r"row 4 \(document 'e'\) holds NaN or infinite"),
    ("rows reversed", "cosine", edit_rows(lambda rows: rows[::-1].copy()), False, rf"embeddings.npy {CHANGED}"),
    ("rows of another index", "dot", edit_rows(lambda rows: rows * 2), False, rf"embeddings.npy {CHANGED}"),
    ("lines sorted", "cosine", edit_lines(lambda lines: sorted(lines, reverse=True)), False,
     rf"corpus.jsonl {CHANGED}"),
    ("a text edited", "cosine", edit_lines(with_record(1, '{"id": "b", "text": "Stocks rose."}')), False,
     rf"corpus.jsonl {CHANGED}"),
    ("duplicate id", "cosine", edit_lines(swap_ids), False, rf"corpus.jsonl {CHANGED}"),
    ("duplicate id, sealed", "cosine", edit_lines(swap_ids), True,
     r"corpus.jsonl: duplicate id 'a' at line 5 and line 1; ids must be unique"),
    ("null id, sealed", "cosine", edit_lines(with_record(1, '{"id": null, "text": "x"}')), True,
     r"corpus.jsonl, line 2: an id must be a str or an int, got None"),
    ("float id, sealed", "cosine", edit_lines(with_record(1, '{"id": 1.5, "text": "x"}')), True,
     r"corpus.jsonl, line 2: an id must be a str or an int, got 1.5"),
    ("a line missing", "cosine", edit_lines(lambda lines: lines[:-1]), True,
     r"corpus.jsonl has 4 lines; index.json says 5 float32 rows"),
    ("a row missing", "cosine", edit_rows(lambda rows: rows[:-1]), True, r"embeddings.npy is float32 \(4, 32\)"),
    ("float64 rows", "cosine", edit_rows(lambda rows: rows.astype(np.float64)), True, r"is float64 \(5, 32\)"),
    ("broken json line", "cosine", edit_lines(with_record(2, '{"id": "c", "text": ')), False,
     r"corpus.jsonl, line 3: not valid JSON"),
    ("line without text", "cosine", edit_lines(with_record(2, '{"id": "c"}')), False,
     r'corpus.jsonl, line 3: expected an object \{"id": ..., "text": "..."\}'),
    ("line that is a list", "cosine", edit_lines(with_record(0, '["a", "text"]')), False,
     r"corpus.jsonl, line 1: expected an object"),
    ("deeply nested line", "cosine", edit_lines(with_record(0, "[" * 100_000)), False,
     r"corpus.jsonl, line 1: not valid JSON"),
    ("lone surrogate", "cosine", edit_lines(with_record(1, '{"id": "b", "text": "abc\\ud800"}')), True,
     r"corpus.jsonl, line 2, field 'text' holds a lone surrogate U\+D800 at character 3"),
    ("not utf-8", "cosine", lambda f: (f / "corpus.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9"}\n'), False,
     r"corpus.jsonl, line 1: byte b'\\xe9' at column 25 is not valid UTF-8"),
    ("truncated npy", "cosine", lambda f: (f / "embeddings.npy").write_bytes((f / "embeddings.npy").read_bytes()[:300]),
     False, r"embeddings.npy: not a complete float32 .npy array"),
    ("empty npy", "cosine", lambda f: (f / "embeddings.npy").write_bytes(b""), False,
     r"embeddings.npy: not a complete float32 .npy array"),
    ("pickled npy", "cosine", lambda f: np.save(f / "embeddings.npy", np.array([{}]), allow_pickle=True), False,
     r"embeddings.npy: not a complete float32 .npy array \(Object arrays cannot be loaded"),
    ("no corpus", "cosine", lambda f: (f / "corpus.jsonl").unlink(), False, r"corpus.jsonl not found"),
    ("no embeddings", "cosine", lambda f: (f / "embeddings.npy").unlink(), False, r"embeddings.npy not found"),
    ("dot rows called cosine", "dot", edit_metadata(lambda m: m.update(similarity="cosine")), False,
     r"embeddings.npy: row 0 has norm .*, but a cosine index stores unit rows"),
    ("no similarity", "cosine", edit_metadata(lambda m: m.pop("similarity")), False,
     r"index.json: no 'similarity' field; expected one of \('cosine', 'dot'\)"),
    ("count as a string", "cosine", edit_metadata(lambda m: m.update(count="5")), False,
     r"index.json: 'count' must be an integer >= 0, got '5'"),
    ("unknown backend", "cosine", edit_metadata(lambda m: m.update(backend="annoy")), False,
     r"index.json: 'backend' must be one of \('exact', 'faiss'\), got 'annoy'"),
    ("probe of another size", "cosine", edit_metadata(lambda m: m["model_probe"].update(embeddings=[[0.0]])),
     False, r"index.json: 'model_probe' must be"),
    ("no checksums", "cosine", edit_metadata(lambda m: m.pop("checksums")), False,
     r"index.json: no 'checksums' field"),
    ("a future version", "cosine", edit_metadata(lambda m: m.update(version=4)), False,
     r"index.json: expected format 'contrasent-semantic-index' version 3, 2 or 1, got .* version 4"),
    ("metadata not an object", "cosine", lambda f: (f / "index.json").write_text("[1, 2]"), False,
     r"index.json: expected format 'contrasent-semantic-index'"),
    ("faiss file replaced", "faiss", lambda f: shutil.copy(f / "embeddings.npy", f / "faiss.index"), False,
     rf"faiss.index {CHANGED}"),
    ("faiss file of no record", "faiss", edit_metadata(lambda m: m["checksums"].pop("faiss.index")), False,
     r"records no checksum of faiss.index: it was not saved with this index; delete it"),
]


@pytest.mark.parametrize(("kind", "damage", "sealed", "message"), [case[1:] for case in DAMAGES],
                         ids=[case[0] for case in DAMAGES])
def test_a_damaged_index_is_refused_naming_the_file(saved, tmp_path, tiny, kind, damage, sealed, message) -> None:
    folder = copy_of(saved, kind, tmp_path)
    damage(folder)
    if sealed:
        reseal(folder)
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=message):
        SemanticIndex.load(folder, tiny)


def test_an_intact_index_loads_and_searches_as_saved(saved, tiny) -> None:
    for kind in ("cosine", "dot", "faiss"):
        loaded = SemanticIndex.load(saved[kind], tiny)
        assert loaded.ids == IDS and loaded.texts == DOCS
        assert loaded.search(DOCS[1], top_k=1)[0].id == "b"


def as_version_1(folder: Path) -> None:
    """What contrasent wrote before checksums: version 1, no checksums."""
    metadata = json.loads((folder / "index.json").read_text())
    metadata["version"] = 1
    del metadata["checksums"]
    (folder / "index.json").write_text(json.dumps(metadata))


def test_a_version_1_index_is_checked_by_embedding_a_sample_again(saved, tiny, tmp_path) -> None:
    folder = copy_of(saved, "cosine", tmp_path)
    as_version_1(folder)
    with pytest.warns(UserWarning, match="without checksums .* save it again"):
        assert SemanticIndex.load(folder, tiny).search(DOCS[3], top_k=1)[0].id == "d"
    edit_rows(lambda rows: rows[::-1].copy())(folder)  # rows out of step with the lines
    with pytest.raises(ValueError, match=r"row 0 of embeddings.npy is not the embedding of line 1 of corpus.jsonl"):
        SemanticIndex.load(folder, tiny)
    edit_rows(lambda rows: rows[::-1].copy())(folder)
    edit_rows(set_row(2, np.nan))(folder)
    with pytest.raises(ValueError, match=r"row 2 \(document 'c'\) holds NaN"):
        SemanticIndex.load(folder, tiny)


def test_a_saved_index_records_checksums_and_the_files_it_ties(saved) -> None:
    metadata = json.loads((saved["faiss"] / "index.json").read_text())
    assert metadata["version"] == 2
    assert set(metadata["checksums"]) == {"corpus.jsonl", "embeddings.npy", "faiss.index"}
    assert metadata["checksums"]["corpus.jsonl"] == hashlib.sha256(
        (saved["faiss"] / "corpus.jsonl").read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------------
# What add() and search() accept
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"texts": ["x"], "ids": ["x"], "embeddings": np.full((1, 32), np.nan)}, ValueError,
     r"embeddings\[0\] \(for texts\[0\], 'x'\) holds NaN or infinite values; nothing was added"),
    ({"texts": ["x", "y"], "ids": ["x", "y"], "embeddings": np.vstack([np.ones(32), np.full(32, np.inf)])},
     ValueError, r"embeddings\[1\] \(for texts\[1\], 'y'\) holds NaN or infinite"),
    ({"texts": "one document"}, TypeError, r"texts must be a list .* got str \('one document'\)"),
    ({"texts": None}, TypeError, r"texts must be a list .* got NoneType"),
    ({"texts": ["x"], "ids": "x"}, TypeError, r"ids must be a list .* got str"),
    ({"texts": ["abc\ud800"]}, ValueError, r"texts\[0\] holds a lone surrogate U\+D800 at character 3"),
    ({"texts": [b"bytes"]}, TypeError, r"texts\[0\] must be a string, got bytes"),
    ({"texts": ["x", "y"], "ids": ["n", "n"]}, ValueError, r"duplicate id 'n' at ids\[1\] and ids\[0\]"),
    ({"texts": ["x"], "ids": ["a"]}, ValueError, r"duplicate id 'a' at ids\[0\]: already in the index"),
    ({"texts": ["x"], "ids": [1.0]}, TypeError, r"ids\[0\]: an id must be a str or an int, got 1.0"),
    ({"texts": ["x"], "ids": [None]}, TypeError, r"ids\[0\]: an id must be a str or an int, got None"),
    ({"texts": ["x"], "ids": [True]}, TypeError, r"an id must be a str or an int, got True"),
])
def test_add_refuses_what_would_make_the_index_lie(tiny, arguments, error, message) -> None:
    index = SemanticIndex.build(DOCS[:2], tiny, ids=["a", "b"])
    with pytest.raises(error, match=message):
        index.add(**arguments)
    assert len(index) == 2 and len(index.embeddings) == 2  # nothing added


def test_numpy_integer_ids_are_kept_as_json_integers(tiny, tmp_path) -> None:
    index = SemanticIndex.build(DOCS[:2], tiny, ids=np.array([10, 11]))
    assert index.ids == [10, 11] and all(type(doc_id) is int for doc_id in index.ids)
    index.save(tmp_path / "index")
    assert SemanticIndex.load(tmp_path / "index", tiny).ids == [10, 11]


def test_load_names_an_option_it_does_not_take(saved, tiny) -> None:
    with pytest.raises(TypeError, match=r"load\(\) takes backend, dtype, faiss_factory, batch_size, query_prompt_name, "
                                        r"query_prompt, document_prompt_name, document_prompt, truncate_dim, rescore_k as "
                                        r"options, not \['similarity'\]"):
        SemanticIndex.load(saved["cosine"], tiny, similarity="dot")


def test_a_model_that_embeds_nan_is_refused_at_add(tiny, monkeypatch) -> None:
    index = SemanticIndex(tiny)
    monkeypatch.setattr(index, "_encode", lambda texts, show=None, **_: np.full((len(texts), 32), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"the model embedded texts\[0\] \('x'\) as NaN or infinite values"):
        index.add(["x"])


@pytest.mark.parametrize(("queries", "top_k", "error", "message"), [
    ("   ", 3, ValueError, r"the query is empty or only whitespace \('   '\)"),
    ("", 3, ValueError, r"the query is empty or only whitespace"),
    ("\u200b\x00\n", 3, ValueError, r"the query is empty or only whitespace"),
    (["cats", "\t"], 3, ValueError, r"queries\[1\] is empty or only whitespace"),
    ([], 3, ValueError, r"queries is empty: give at least one query"),
    (None, 3, TypeError, r"queries must be a string or a list of strings, got NoneType"),
    (b"cats", 3, TypeError, r"queries must be a string or a list of strings, got bytes"),
    (42, 3, TypeError, r"queries must be a string or a list of strings, got int"),
    (["cats", 42], 3, TypeError, r"queries\[1\] must be a string, got int"),
    ("abc\udce9", 3, ValueError, r"lone surrogate U\+DCE9 at character 3 \(the byte 0xe9, not UTF-8\)"),
    ("cats", 0, ValueError, r"top_k must be a positive integer, got 0"),
    ("cats", 2.0, ValueError, r"top_k must be a positive integer, got 2.0"),
    ("cats", True, ValueError, r"top_k must be a positive integer, got True"),
    ("cats", None, ValueError, r"top_k must be a positive integer, got None"),
])
def test_search_refuses_queries_that_say_nothing(tiny, queries, top_k, error, message) -> None:
    index = SemanticIndex.build(DOCS, tiny)
    encoded = []
    index.model = type("Spy", (), {"encode": lambda _, texts, **kw: encoded.append(texts) or tiny.encode(texts, **kw),
                                   "embedding_dim": 32})()
    with pytest.raises(error, match=message):
        index.search(queries, top_k=top_k)
    assert encoded == []  # refused before any encoding


def test_search_accepts_any_iterable_of_queries_and_numpy_integers(tiny) -> None:
    index = SemanticIndex.build(DOCS, tiny, ids=IDS)
    results = index.search((query for query in [DOCS[0], DOCS[4]]), top_k=np.int64(2))
    assert [hits[0].id for hits in results] == ["a", "e"] and [len(hits) for hits in results] == [2, 2]


def test_searching_an_empty_index_is_an_error(tiny) -> None:
    empty = SemanticIndex(tiny)
    with pytest.raises(ValueError, match=r"the index holds no documents: add\(\) some before searching"):
        empty.search("cats")
    with pytest.raises(ValueError, match="the index holds no documents"):
        empty.search_embeddings(np.ones((1, 32)))
    with pytest.raises(ValueError, match=r"query embedding 0 holds NaN or infinite values"):
        SemanticIndex.build(DOCS, tiny).search_embeddings(np.full((1, 32), np.nan))


def test_batch_size_must_be_positive(tiny) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        SemanticIndex(tiny, batch_size=0)


# --------------------------------------------------------------------------------------------------------
# Saving never replaces what is not an index (class 2)
# --------------------------------------------------------------------------------------------------------
def test_save_never_replaces_a_file_or_a_foreign_folder(tiny, tmp_path) -> None:
    index = SemanticIndex.build(DOCS, tiny)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes.txt is a file; refusing to replace it with a search index folder"):
        index.save(notes)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(FileExistsError, match=r"photos is a folder of other files \(1 entry: cat.jpg\) and holds no index.json"):
        index.save(photos)
    assert notes.read_text() == "mine" and [p.name for p in photos.iterdir()] == ["cat.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photos"]  # no hidden .saving- left

    with pytest.raises(NotADirectoryError, match=r"cannot save the index to .*notes.txt/index: .*notes.txt is a file"):
        index.save(notes / "index")
    with pytest.raises(OSError, match=r"cannot save the index to /proc/contrasent-index: /proc cannot be written"):
        index.save("/proc/contrasent-index")  # /proc refuses new files to everyone, root included


def test_saving_over_a_faiss_index_leaves_no_stale_faiss_file(tiny, tmp_path) -> None:
    with_faiss = SemanticIndex.build(DOCS[:3], tiny, backend="faiss")
    with_faiss.search("builds the faiss index")
    with_faiss.save(tmp_path / "index")
    SemanticIndex.build(DOCS[3:], tiny, ids=["d", "e"]).save(tmp_path / "index")  # exact: no faiss file
    assert not (tmp_path / "index" / "faiss.index").exists()
    assert SemanticIndex.load(tmp_path / "index", tiny, backend="faiss").search(DOCS[4], top_k=1)[0].id == "e"


def test_a_full_disk_while_saving_names_the_index_and_keeps_the_previous_one(tiny, tmp_path, monkeypatch) -> None:
    SemanticIndex.build(DOCS[:2], tiny).save(tmp_path / "index")

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError, match=r"cannot save the index to .*index: No space left on device"):
        SemanticIndex.build(DOCS, tiny).save(tmp_path / "index")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no half-written sibling left
    assert len(SemanticIndex.load(tmp_path / "index", tiny)) == 2  # the previous index, intact


def test_save_replaces_an_index_and_fills_an_empty_folder(tiny, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    SemanticIndex.build(DOCS[:2], tiny).save(tmp_path / "empty")
    SemanticIndex.build(DOCS, tiny).save(tmp_path / "empty")  # an index: ours to replace
    assert len(SemanticIndex.load(tmp_path / "empty", tiny)) == 5
