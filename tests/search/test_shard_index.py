"""`SemanticIndex.from_shards`: searching the shards `contrasent encode` wrote, block by block, gives what an
in-memory index of the same corpus gives (exact, faiss, int8, binary); a foreign model or corpus file is
refused by name; `contrasent search --index SHARDS` answers from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contrasent import SentenceEncoder
from contrasent.cli import main
from contrasent.search import blockwise
from contrasent.search.corpus import read_corpus
from contrasent.search.corpus_shards import encode_corpus
from contrasent.search.index import SemanticIndex
from contrasent.search.quantization import faiss_available

QUERIES = ["cell biology of cancer", "vitamin D deficiency", "protein folding", "how do vaccines work"]


@pytest.fixture(scope="module")
def model(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def corpus(scifact_head) -> Path:
    return scifact_head(120)


@pytest.fixture(scope="module")
def shards(model, corpus, tmp_path_factory) -> Path:
    """The corpus in shards of 25 rows (the last one shorter)."""
    folder = tmp_path_factory.mktemp("shards") / "shards"
    encode_corpus(model, corpus, folder, shard_size=25, batch_size=16, show_progress_bar=False)
    return folder


@pytest.fixture(scope="module")
def in_memory(model, corpus):
    ids, texts = read_corpus(corpus)
    return ids, texts


def assert_same_results(ours, theirs) -> None:
    for ours_hits, their_hits in zip(ours, theirs, strict=True):
        assert [hit.id for hit in ours_hits] == [hit.id for hit in their_hits]
        assert [hit.text for hit in ours_hits] == [hit.text for hit in their_hits]
        np.testing.assert_allclose([hit.score for hit in ours_hits], [hit.score for hit in their_hits], atol=1e-6)


@pytest.mark.parametrize("block_size", [None, 7, 25, 1])
def test_search_from_shards_equals_the_in_memory_index(model, corpus, shards, in_memory, block_size) -> None:
    ids, texts = in_memory
    expected = SemanticIndex.build(texts, model, ids=ids).search(QUERIES, top_k=10)
    index = SemanticIndex.from_shards(shards, model, corpus=corpus, block_size=block_size)
    assert len(index) == len(ids)
    assert_same_results(index.search(QUERIES, top_k=10), expected)
    assert index.info()["bytes_in_memory"] == 0


def test_the_search_reads_one_block_at_a_time(model, corpus, shards, monkeypatch) -> None:
    seen: list[int] = []
    search = blockwise.exact_search

    def spy(queries, rows, k):
        seen.append(len(rows))
        return search(queries, rows, k)

    monkeypatch.setattr(blockwise, "exact_search", spy)
    monkeypatch.setattr(blockwise.blockwise_top_k, "__defaults__", (spy, None))
    SemanticIndex.from_shards(shards, model, corpus=corpus, block_size=10).search(QUERIES, top_k=5)
    assert seen and max(seen) <= 10
    assert sum(seen) == 120  # every row once


def test_without_the_corpus_file_results_carry_ids_only(model, shards, in_memory) -> None:
    ids, texts = in_memory
    expected = SemanticIndex.build(texts, model, ids=ids).search(QUERIES[0], top_k=5)
    hits = SemanticIndex.from_shards(shards, model).search(QUERIES[0], top_k=5)
    assert [hit.id for hit in hits] == [hit.id for hit in expected]
    assert all(hit.text is None for hit in hits)


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_quantized_index_from_shards_equals_the_in_memory_one(model, corpus, shards, in_memory, quantization) -> None:
    ids, texts = in_memory
    expected = SemanticIndex.build(texts, model, ids=ids, quantization=quantization).search(QUERIES, top_k=10)
    index = SemanticIndex.from_shards(shards, model, corpus=corpus, quantization=quantization)
    assert_same_results(index.search(QUERIES, top_k=10), expected)
    assert index.info()["bytes_in_memory"] > 0


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
def test_faiss_flat_from_shards_equals_exact(model, corpus, shards, in_memory) -> None:
    ids, texts = in_memory
    expected = SemanticIndex.build(texts, model, ids=ids).search(QUERIES, top_k=10)
    index = SemanticIndex.from_shards(shards, model, corpus=corpus, backend="faiss")
    assert index._faiss.ntotal == len(ids)
    assert_same_results(index.search(QUERIES, top_k=10), expected)


def test_another_model_is_refused(tiny_bert_dir, shards) -> None:
    other = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="cls")
    with pytest.raises(ValueError, match=f"{shards}.*different model"):
        SemanticIndex.from_shards(shards, other)


def test_another_corpus_file_is_refused(model, corpus, shards, tmp_path) -> None:
    edited = tmp_path / "corpus.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    record["text"] += " (edited)"
    edited.write_text("\n".join(lines[:3] + [json.dumps(record)] + lines[4:]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"corpus file {edited} is not the file the shards"):
        SemanticIndex.from_shards(shards, model, corpus=edited)


def test_options_that_change_the_documents_and_changes_to_the_shards_are_refused(model, shards) -> None:
    with pytest.raises(TypeError, match="truncate_dim"):
        SemanticIndex.from_shards(shards, model, truncate_dim=8)
    with pytest.raises(ValueError, match="block_size"):
        SemanticIndex.from_shards(shards, model, block_size=0)
    index = SemanticIndex.from_shards(shards, model)
    with pytest.raises(ValueError, match="cannot add"):
        index.add(["a new document"])
    with pytest.raises(ValueError, match="cannot save"):
        index.save(shards.parent / "copy")


def test_contrasent_search_answers_from_shards(tiny_bert_dir, corpus, shards, capsys) -> None:
    argv = ["search", str(tiny_bert_dir), "--corpus", str(corpus), "--json", "--no-progress", "--top-k", "5"]
    assert main([*argv, *QUERIES[:2]]) == 0
    expected = capsys.readouterr().out
    assert main([*argv, "--index", str(shards), *QUERIES[:2]]) == 0
    captured = capsys.readouterr()
    assert "encoding" not in captured.err  # answered from the shards, nothing encoded
    for ours, theirs in zip(captured.out.splitlines(), expected.splitlines(), strict=True):
        ours, theirs = json.loads(ours), json.loads(theirs)
        assert [hit["id"] for hit in ours["results"]] == [hit["id"] for hit in theirs["results"]]
        np.testing.assert_allclose([hit["score"] for hit in ours["results"]],
                                   [hit["score"] for hit in theirs["results"]], atol=1e-6)


@pytest.mark.slow
def test_contrasent_serve_answers_from_shards(tiny_bert_dir, corpus, shards, in_memory, model, serving) -> None:
    """`contrasent serve --index SHARDS` as a user starts it, asked over HTTP."""
    import urllib.request

    url, health = serving(str(tiny_bert_dir), "--corpus", str(corpus), "--index", str(shards))
    assert health["documents"] == 120
    request = urllib.request.Request(f"{url}/search", data=json.dumps({"queries": QUERIES, "top_k": 5}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        served = json.load(response)["results"]
    ids, texts = in_memory
    expected = SemanticIndex.build(texts, model, ids=ids).search(QUERIES, top_k=5)
    for hits, their_hits in zip(served, expected, strict=True):
        assert [hit["id"] for hit in hits] == [hit.id for hit in their_hits]
        assert [hit["text"] for hit in hits] == [hit.text for hit in their_hits]
        np.testing.assert_allclose([hit["score"] for hit in hits], [hit.score for hit in their_hits], atol=1e-5)


def test_load_with_mmap_searches_the_saved_rows_on_disk(model, in_memory, tmp_path, monkeypatch) -> None:
    from contrasent.search import index as index_module

    ids, texts = in_memory
    SemanticIndex.build(texts, model, ids=ids).save(tmp_path / "index")
    monkeypatch.setattr(index_module, "MMAP_BLOCK_ROWS", 16)  # several blocks for 120 rows
    mapped = SemanticIndex.load(tmp_path / "index", model, mmap=True)
    assert isinstance(mapped._shards.rows, np.memmap)
    assert_same_results(mapped.search(QUERIES, top_k=10),
                        SemanticIndex.load(tmp_path / "index", model).search(QUERIES, top_k=10))
    with pytest.raises(ValueError, match="cannot add"):
        mapped.add(["a new document"])
    SemanticIndex.build(texts, model, ids=ids, quantization="int8").save(tmp_path / "int8")
    with pytest.raises(ValueError, match="mmap=True.*quantization='int8'"):
        SemanticIndex.load(tmp_path / "int8", model, mmap=True)
