"""benchmarks/corpus_scale.py: its corpus of recombined real sentences is the same for the same seed, each
query is a sentence of its positive document, and the shards it extends with random unit vectors form a
folder that ``load_shards`` reads whole, the encoded rows first, ids matching the extended corpus file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from contrasent.models.encoder import SentenceEncoder
from contrasent.search.corpus import read_corpus
from contrasent.search.corpus_shards import encode_corpus
from contrasent.search.shard_manifest import file_sha256, read_manifest
from contrasent.search.shard_reader import load_shards

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus_scale.py"


@pytest.fixture(scope="module")
def corpus_scale():
    spec = importlib.util.spec_from_file_location("corpus_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_seeded_and_queries_come_from_their_positives(corpus_scale, data_dir) -> None:
    documents, queries = corpus_scale.build_corpus(data_dir, 300, 100, seed=0)
    assert (documents, queries) == corpus_scale.build_corpus(data_dir, 300, 100, seed=0)
    assert documents != corpus_scale.build_corpus(data_dir, 300, 100, seed=1)[0]
    assert len({document["_id"] for document in documents}) == 300
    assert len({len(document["text"]) for document in documents}) > 100  # lengths vary
    texts = {document["_id"]: document["text"] for document in documents}
    assert len(queries) == 100 and len({query["query"] for query in queries}) == 100
    assert all(query["query"] in texts[query["positive"]] for query in queries)


def test_synthetic_rows_extend_the_encoded_shards(corpus_scale, data_dir, tiny_bert_dir, tmp_path) -> None:
    documents, _ = corpus_scale.build_corpus(data_dir, 40, 0, seed=0)
    corpus_scale.write_jsonl(tmp_path / "corpus.jsonl", documents)
    encode_corpus(SentenceEncoder.from_pretrained(tiny_bert_dir), tmp_path / "corpus.jsonl", tmp_path / "real",
                  shard_size=16, dtype="float16", show_progress_bar=False)
    corpus_scale.extend_shards(tmp_path / "real", tmp_path / "corpus.jsonl", tmp_path / "synthetic",
                               tmp_path / "corpus-synthetic.jsonl", 100, seed=0)

    real = list(load_shards(tmp_path / "real"))
    shards = list(load_shards(tmp_path / "synthetic", verify_checksums=True))
    ids = [identifier for shard_ids, _ in shards for identifier in shard_ids]
    rows = np.concatenate([embeddings for _, embeddings in shards])
    assert ids == read_corpus(tmp_path / "corpus-synthetic.jsonl")[0] == [d["_id"] for d in documents] + [
        f"synthetic-{row:07d}" for row in range(40, 100)]
    assert rows.dtype == np.float16 and rows.shape == (100, real[0][1].shape[1])
    np.testing.assert_array_equal(rows[:40], np.concatenate([embeddings for _, embeddings in real]))
    np.testing.assert_allclose(np.linalg.norm(rows[40:].astype(np.float32), axis=1), 1, atol=1e-3)
    manifest, encoded = read_manifest(tmp_path / "synthetic"), read_manifest(tmp_path / "real")
    assert manifest["corpus"]["sha256"] == file_sha256(tmp_path / "corpus-synthetic.jsonl")
    assert {key: manifest[key] for key in ("model_probe", "shard_size", "dtype", "embedding_dim", "prompt")} == {
        key: encoded[key] for key in ("model_probe", "shard_size", "dtype", "embedding_dim", "prompt")}
