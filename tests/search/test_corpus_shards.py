"""`encode_corpus` and `load_shards`: a real corpus (200 SciFact documents) encoded by a real model (the tiny
BERT) into shards equals `model.encode` of the same texts, in corpus order; an interrupted run resumes
without rewriting finished shards and ends with the files of an uninterrupted run; a folder written by
another model or other settings, or holding a damaged shard, is refused with the file and field named.
(The command line, and a resume after `kill -9`: tests/cli/test_cli_encode.py.)"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from contrasent.models.atomic_file import temporary_target, write_atomically
from contrasent.models.encoder import SentenceEncoder
from contrasent.search.corpus_shards import encode_corpus
from contrasent.search.shard_ranks import contiguous_part
from contrasent.search.shard_reader import load_shards

DOCUMENTS = 200


@pytest.fixture(scope="module")
def corpus(scifact_head) -> Path:
    """The first 200 SciFact documents, as a BEIR corpus.jsonl."""
    return scifact_head(DOCUMENTS)


@pytest.fixture(scope="module")
def model(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def reference(model, corpus, tmp_path_factory) -> Path:
    """An uninterrupted encoding in shards of 64 rows (4 shards, the last one of 8)."""
    folder = tmp_path_factory.mktemp("reference") / "shards"
    encode_corpus(model, corpus, folder, shard_size=64, batch_size=16, show_progress_bar=False)
    return folder


def corpus_rows(corpus: Path) -> tuple[list[str], list[str]]:
    """Ids and texts as BEIR defines them, read here independently of contrasent's reader."""
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    return [record["_id"] for record in records], [f"{record['title']} {record['text']}".strip() for record in records]


def read_all(folder: Path, **options) -> tuple[list, np.ndarray]:
    ids, blocks = [], []
    for shard_ids, embeddings in load_shards(folder, **options):
        assert isinstance(embeddings, np.memmap)
        ids += shard_ids
        blocks.append(np.asarray(embeddings))
    return ids, np.concatenate(blocks)


def file_stats(folder: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    return {name: ((folder / name).stat().st_ino, (folder / name).stat().st_mtime_ns) for name in names}


def test_shards_hold_the_models_embeddings_in_corpus_order(model, corpus, reference) -> None:
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["count"] == DOCUMENTS and manifest["shard_size"] == 64
    assert [(shard["start"], shard["stop"]) for shard in manifest["shards"]] == [(0, 64), (64, 128), (128, 192), (192, 200)]
    assert manifest["corpus"] == {"file": "corpus.jsonl", "size": corpus.stat().st_size, "rows": DOCUMENTS,
                                  "sha256": hashlib.sha256(corpus.read_bytes()).hexdigest()}
    assert (manifest["dtype"], manifest["embedding_dim"], manifest["prompt"]) == ("float32", 32, "")
    for shard in manifest["shards"]:  # the recorded checksums are those of the files
        for key in ("embeddings", "ids"):
            assert hashlib.sha256((reference / shard[key]).read_bytes()).hexdigest() == shard[f"{key}_sha256"]

    expected_ids, texts = corpus_rows(corpus)
    ids, embeddings = read_all(reference, verify_checksums=True)
    assert ids == expected_ids
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, model.encode(texts, batch_size=16), atol=1e-6, rtol=0)


def test_float16_prompt_and_truncation_are_applied_and_recorded(model, corpus, tmp_path) -> None:
    manifest = encode_corpus(model, corpus, tmp_path / "half", shard_size=150, dtype="float16", prompt="passage: ",
                             truncate_dim=16, normalize=True, show_progress_bar=False)
    assert (manifest["dtype"], manifest["prompt"], manifest["truncate_dim"], manifest["embedding_dim"],
            manifest["normalize"]) == ("float16", "passage: ", 16, 16, True)
    _, texts = corpus_rows(corpus)
    _, embeddings = read_all(tmp_path / "half")
    assert embeddings.dtype == np.float16 and embeddings.shape == (DOCUMENTS, 16)
    expected = model.encode(texts, prompt="passage: ", truncate_dim=16, normalize=True)
    np.testing.assert_allclose(embeddings.astype(np.float32), expected, atol=1e-3, rtol=0)


def test_an_interrupted_run_resumes_without_rewriting_finished_shards(model, corpus, reference, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "shards"
    calls = 0
    original = SentenceEncoder.encode

    def encode_then_fail(self, texts, **options):
        nonlocal calls
        calls += 1
        if calls == 4:  # 1: the probe sentences, 2-3: shards 0 and 1
            raise KeyboardInterrupt
        return original(self, texts, **options)

    monkeypatch.setattr(SentenceEncoder, "encode", encode_then_fail)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(model, corpus, folder, shard_size=64, batch_size=16, show_progress_bar=False)
    monkeypatch.undo()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and len(manifest["shards"]) == 2
    with pytest.raises(ValueError, match="incomplete.*run the same contrasent encode again"):
        load_shards(folder)
    (folder / ".embeddings-00002.npy.x1y2z3.partial").write_bytes(b"half a shard")  # what a kill leaves
    finished = file_stats(folder, ["embeddings-00000.npy", "ids-00000.json", "embeddings-00001.npy", "ids-00001.json"])

    encode_corpus(model, corpus, folder, shard_size=64, batch_size=16, show_progress_bar=False)
    assert file_stats(folder, list(finished)) == finished  # never rewritten
    assert sorted(path.name for path in folder.iterdir()) == sorted(path.name for path in reference.iterdir())
    for path in reference.iterdir():  # the same bytes as an uninterrupted run: manifest, rows and ids
        assert (folder / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize(("option", "field"), [
    ({"shard_size": 32}, "shard_size 64, but this run has shard_size 32"),
    ({"dtype": "float16"}, "dtype 'float32', but this run has dtype 'float16'"),
    ({"prompt": "passage: "}, "prompt '', but this run has prompt 'passage: '"),
    ({"truncate_dim": 8}, "embedding_dim 32, but this run has embedding_dim 8"),
])
def test_a_manifest_of_other_settings_is_refused(model, corpus, reference, option, field) -> None:
    before = {path.name: path.read_bytes() for path in reference.iterdir()}
    options = {"shard_size": 64, "batch_size": 16, "show_progress_bar": False, **option}
    with pytest.raises(ValueError, match=f"{reference / 'manifest.json'} was written with {field}"):
        encode_corpus(model, corpus, reference, **options)
    assert {path.name: path.read_bytes() for path in reference.iterdir()} == before


def test_a_manifest_of_another_model_or_corpus_is_refused(tiny_bert_dir, corpus, reference, tmp_path) -> None:
    other = SentenceEncoder.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)) * 0.5)
    with pytest.raises(ValueError, match=r"manifest\.json was written with another model .*tiny-bert-topics.*cosine"):
        encode_corpus(other, corpus, reference, shard_size=64, show_progress_bar=False)

    edited = tmp_path / "corpus.jsonl"
    edited.write_text(corpus.read_text().replace("a", "b", 1))
    with pytest.raises(ValueError, match=r"manifest\.json was written for another corpus \(corpus\.jsonl: 200 rows"):
        encode_corpus(tiny_bert_dir, edited, reference, shard_size=64, show_progress_bar=False)


def test_a_damaged_or_missing_shard_is_named(model, corpus, reference, tmp_path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    for path in reference.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    damaged = bytearray((folder / "embeddings-00001.npy").read_bytes())
    damaged[-1] ^= 1  # one bit of one float: the shape still loads
    (folder / "embeddings-00001.npy").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"embeddings-00001\.npy is damaged.*rows 64-127"):
        encode_corpus(model, corpus, folder, shard_size=64, batch_size=16, show_progress_bar=False)
    with pytest.raises(ValueError, match=r"embeddings-00001\.npy is damaged"):
        read_all(folder, verify_checksums=True)

    (folder / "ids-00002.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"ids-00002\.json not found"):
        read_all(folder)


def test_what_is_not_a_shards_folder_is_never_written(model, corpus, tmp_path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt is a file"):
        encode_corpus(model, corpus, a_file, show_progress_bar=False)
    with pytest.raises(FileExistsError, match=r"holds no manifest\.json"):
        encode_corpus(model, corpus, tmp_path, show_progress_bar=False)
    assert a_file.read_text() == "mine" and [path.name for path in tmp_path.iterdir()] == ["notes.txt"]

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="holds no documents"):
        encode_corpus(model, empty, tmp_path / "out", show_progress_bar=False)
    with pytest.raises(ValueError, match="dtype must be one of"):
        encode_corpus(model, corpus, tmp_path / "out", dtype="bfloat16")


def test_atomic_writes_leave_no_temporary_file(tmp_path) -> None:
    target = tmp_path / "embeddings-00000.npy"
    write_atomically(target, b"new")
    write_atomically(target, b"newer")
    assert target.read_bytes() == b"newer" and [path.name for path in tmp_path.iterdir()] == [target.name]
    assert temporary_target(".embeddings-00000.npy.ab_c12.partial") == "embeddings-00000.npy"
    assert temporary_target("embeddings-00000.npy") is None


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m["shards"][1].update(stop=100), r"shard entry 1 must be \{'embeddings': 'embeddings-00001.npy'"),
    (lambda m: m["shards"].reverse(), "shard entry 1 must record a shard of the corpus after the shard before it"),
    (lambda m: m["shards"].pop(), "status 'complete', but 3 of 4 shards are recorded"),
    (lambda m: m.update(dtype="int8"), "'dtype' must be one of"),
])
def test_an_edited_manifest_is_refused_naming_it(reference, tmp_path, edit, message) -> None:
    folder = tmp_path / "shards"
    shutil.copytree(reference, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=f"{folder / 'manifest.json'}: {message}"):
        load_shards(folder)


def test_each_rank_takes_a_contiguous_part_of_the_missing_shards() -> None:
    missing = [2, 3, 5, 6, 7]
    assert [contiguous_part(missing, rank, 2) for rank in range(2)] == [[2, 3], [5, 6, 7]]
    assert [contiguous_part([1], rank, 3) for rank in range(3)] == [[], [], [1]]
    assert contiguous_part(missing, 0, 1) == missing
