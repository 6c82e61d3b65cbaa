"""SemanticIndex: exact search against brute force, faiss against exact, save/load, model checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from contrasent import SemanticIndex, SentenceEncoder

DOCS = ["A cat sleeps on the sofa.", "Stock markets fell sharply today.", "The recipe needs two eggs.",
        "Dogs love to play fetch.", "Interest rates were raised by the central bank."]


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


def random_index(model, n: int, seed: int = 0, **options) -> SemanticIndex:
    rng = np.random.default_rng(seed)
    index = SemanticIndex(model, **options)
    index.add([f"doc {i}" for i in range(n)], embeddings=rng.standard_normal((n, model.embedding_dim)))
    return index


def brute_force(corpus: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ corpus.astype(np.float64).T
    positions = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, positions, axis=1), positions


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_exact_search_equals_brute_force_on_random_data(tiny, similarity) -> None:
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((1000, tiny.embedding_dim)).astype(np.float32)
    index = SemanticIndex(tiny, similarity=similarity)
    index.add([f"doc {i}" for i in range(600)], embeddings=raw[:600])
    index.add([f"doc {i}" for i in range(600, 1000)], embeddings=raw[600:])  # two adds
    queries = rng.standard_normal((37, tiny.embedding_dim)).astype(np.float32)
    corpus, query = raw, queries
    if similarity == "cosine":
        corpus = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        query = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    want_scores, want_positions = brute_force(corpus, query, 10)
    # small chunks so the running top-k is merged across many corpus and query chunks
    for scores, positions in (index.search_embeddings(queries, 10),
                              index._exact_search(index_queries(index, queries), 10, query_chunk=5, corpus_chunk=64)):
        assert np.array_equal(positions, want_positions)
        assert np.allclose(scores, want_scores, atol=1e-5)


def index_queries(index: SemanticIndex, queries: np.ndarray) -> np.ndarray:
    if index.similarity == "cosine":
        return queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return queries


def test_bfloat16_search_returns_exact_scores_of_nearly_the_same_hits(tiny) -> None:
    exact = random_index(tiny, 2000)
    fast = random_index(tiny, 2000, dtype="bfloat16")
    queries = np.random.default_rng(2).standard_normal((20, tiny.embedding_dim))
    _, want_positions = exact.search_embeddings(queries, 10)
    scores, positions = fast.search_embeddings(queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(positions, want_positions)])
    assert overlap >= 0.9
    rescored = np.take_along_axis(index_queries(exact, queries.astype(np.float32)) @ exact.embeddings.T, positions, 1)
    assert np.allclose(scores, rescored, atol=1e-5)  # float32 scores of the bf16 candidates
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_faiss_flat_returns_the_same_top10_as_exact_on_10k_vectors(tiny) -> None:
    exact = random_index(tiny, 10_000, seed=3)
    flat = random_index(tiny, 10_000, seed=3, backend="faiss")
    queries = np.random.default_rng(4).standard_normal((50, tiny.embedding_dim))
    want_scores, want_positions = exact.search_embeddings(queries, 10)
    scores, positions = flat.search_embeddings(queries, 10)
    assert type(flat._faiss).__name__ == "IndexFlatIP"
    assert np.array_equal(positions, want_positions)
    assert np.allclose(scores, want_scores, atol=1e-5)


def test_search_texts_returns_id_score_text(tiny) -> None:
    index = SemanticIndex.build(DOCS, tiny, ids=["cat", "stocks", "eggs", "dogs", "rates"])
    hits = index.search(DOCS[1], top_k=3)
    assert hits[0].id == "stocks" and hits[0].text == DOCS[1] and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    assert [len(r) for r in index.search([DOCS[0], DOCS[2]], top_k=50)] == [5, 5]
    with pytest.raises(ValueError, match="the index holds no documents"):
        SemanticIndex(tiny).search("anything")


@pytest.mark.slow
def test_real_model_finds_the_related_document(minilm_dir) -> None:
    index = SemanticIndex.build(DOCS, minilm_dir)
    assert index.search("the economy: share prices dropped", top_k=1)[0].text == DOCS[1]
    assert index.search("puppies playing", top_k=1)[0].text == DOCS[3]


def test_build_from_a_datasets_column(tiny) -> None:
    from datasets import Dataset

    dataset = Dataset.from_dict({"doc_id": [10, 11, 12], "body": DOCS[:3]})
    index = SemanticIndex.from_dataset(dataset, tiny, text_column="body", id_column="doc_id")
    assert index.ids == [10, 11, 12] and index.texts == DOCS[:3]
    assert np.allclose(index.embeddings, tiny.encode(DOCS[:3], normalize=True), atol=1e-6)
    with pytest.raises(ValueError, match=r"no column 'text'; its columns are \['doc_id', 'body'\]"):
        SemanticIndex.from_dataset(dataset, tiny)


@pytest.mark.parametrize(("backend", "factory"), [("exact", "Flat"), ("faiss", "Flat"), ("faiss", "HNSW32")])
def test_save_load_round_trip(tiny, tiny_bert_dir, tmp_path, backend, factory) -> None:
    index = SemanticIndex.build(DOCS, tiny_bert_dir, ids=["a", 1, "c", 3, "e"], backend=backend,
                                faiss_factory=factory)
    before = index.search(["cats", "finance"], top_k=3)
    index.save(tmp_path / "index")
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == sorted(
        ["index.json", "embeddings.npy", "corpus.jsonl"] + (["faiss.index"] if backend == "faiss" else []))
    loaded = SemanticIndex.load(tmp_path / "index")  # the model recorded in index.json
    assert loaded.ids == ["a", 1, "c", 3, "e"] and loaded.texts == DOCS and loaded.backend == backend
    assert np.array_equal(loaded.embeddings, index.embeddings)
    assert loaded.search(["cats", "finance"], top_k=3) == before
    if backend == "faiss":
        assert loaded._faiss is not None and loaded._faiss.ntotal == 5  # read, not rebuilt
        assert type(loaded._faiss).__name__ == ("IndexFlatIP" if factory == "Flat" else "IndexHNSWFlat")
    loaded.add(["one more"])
    assert loaded.ids[-1] == 5 and len(loaded.search("one more", top_k=6)) == 6
    assert len(SemanticIndex.load(tmp_path / "index", tiny)) == 5  # an explicitly passed model


def test_load_refuses_another_model(tiny_bert_dir, tmp_path) -> None:
    SemanticIndex.build(DOCS, tiny_bert_dir).save(tmp_path / "index")
    projected = SentenceEncoder.from_pretrained(tiny_bert_dir, head=True, head_dim=16)
    with pytest.raises(ValueError, match=r"built with .*tiny-bert-topics \(32-dimensional embeddings\), but the "
                                         r"model given gives 16-dimensional"):
        SemanticIndex.load(tmp_path / "index", projected)
    other_pooling = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="cls")  # same size, other vectors
    with pytest.raises(ValueError, match="built with a different model .*embeds the index's probe sentences differently"):
        SemanticIndex.load(tmp_path / "index", other_pooling)


def test_load_errors_name_the_file(tiny, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="index.json not found: .* is not a saved SemanticIndex"):
        SemanticIndex.load(tmp_path, tiny)
    SemanticIndex.build(DOCS, tiny).save(tmp_path / "index")
    metadata = json.loads((tmp_path / "index" / "index.json").read_text())
    assert metadata["model"] is None
    with pytest.raises(ValueError, match="records no model name: pass model="):
        SemanticIndex.load(tmp_path / "index")
    (tmp_path / "index" / "corpus.jsonl").write_text('{"id": 0, "text": "only one"}\n')
    with pytest.raises(ValueError, match="corpus.jsonl has 1 lines; index.json says 5 float32 rows"):
        SemanticIndex.load(tmp_path / "index", tiny)


def test_add_and_search_errors(tiny) -> None:
    index = SemanticIndex.build(DOCS[:2], tiny, ids=["x", "y"])
    with pytest.raises(ValueError, match=r"duplicate id 'x' at ids\[0\]: already in the index"):
        index.add(["again"], ids=["x"])
    with pytest.raises(ValueError, match="got 1 ids for 2 texts"):
        index.add(["a", "b"], ids=["z"])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string, got int"):
        index.add(["a", 3])
    with pytest.raises(ValueError, match=r"embeddings have shape \(1, 8\), expected \(1, 32\)"):
        index.add(["a"], ids=["a"], embeddings=np.zeros((1, 8)))
    with pytest.raises(ValueError, match="top_k must be a positive integer, got 0"):
        index.search("q", top_k=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        SemanticIndex(tiny, backend="annoy")
    assert len(index) == 2  # failed adds left nothing behind


def test_building_shows_a_progress_bar_counting_texts(tiny, capsys) -> None:
    SemanticIndex.build(DOCS, tiny, show_progress_bar=True)
    bar = capsys.readouterr().err
    assert "Encoding" in bar and "5/5" in bar and "text/s" in bar
    SemanticIndex.build(DOCS, tiny, show_progress_bar=False)
    assert capsys.readouterr().err == ""


PROMPTS = {"query": "query: ", "document": "passage: "}


def test_queries_and_documents_get_the_models_prompts(tiny_bert_dir) -> None:
    model = SentenceEncoder.from_pretrained(tiny_bert_dir, prompts=PROMPTS)
    index = SemanticIndex.build(DOCS, model)
    assert (index.query_prompt, index.document_prompt) == ("query: ", "passage: ")
    np.testing.assert_allclose(index.embeddings, model.encode(DOCS, prompt_name="document", normalize=True),
                               atol=1e-6)
    expected = model.encode(["cats"], prompt_name="query", normalize=True) @ index.embeddings.T
    assert index.search("cats", top_k=1)[0].score == pytest.approx(float(expected.max()), abs=1e-5)
    named = SemanticIndex.build(DOCS, model, document_prompt_name="query", query_prompt="")
    assert (named.query_prompt, named.document_prompt) == ("", "query: ")
    with pytest.raises(ValueError, match=r"prompt_name 'title' is not one of this model's prompts"):
        SemanticIndex(model, query_prompt_name="title")


def test_load_refuses_another_document_prompt(tiny_bert_dir, tmp_path) -> None:
    model = SentenceEncoder.from_pretrained(tiny_bert_dir, prompts=PROMPTS)
    SemanticIndex.build(DOCS, model).save(tmp_path / "index")
    assert json.loads((tmp_path / "index" / "index.json").read_text())["document_prompt"] == "passage: "
    assert SemanticIndex.load(tmp_path / "index", model).document_prompt == "passage: "
    with pytest.raises(ValueError, match=r"built with the document prompt 'passage: ', but this load would embed "
                                         r"documents with ''"):
        SemanticIndex.load(tmp_path / "index", SentenceEncoder.from_pretrained(tiny_bert_dir))
    with pytest.raises(ValueError, match=r"document prompt 'passage: '.*with 'doc: '"):
        SemanticIndex.load(tmp_path / "index", model, document_prompt="doc: ")


def test_truncate_dim_keeps_the_first_dimensions_and_is_saved(tiny, tmp_path) -> None:
    index = SemanticIndex.build(DOCS, tiny, truncate_dim=8)
    assert index.dim == 8 and index.embeddings.shape == (5, 8)
    np.testing.assert_allclose(index.embeddings, tiny.encode(DOCS, truncate_dim=8, normalize=True), atol=1e-6)
    index.save(tmp_path / "index")
    loaded = SemanticIndex.load(tmp_path / "index", tiny)
    assert loaded.truncate_dim == 8 and loaded.search("cats", top_k=2) == index.search("cats", top_k=2)
    with pytest.raises(ValueError, match=r"\(8-dimensional embeddings\), but the model given gives 16-dimensional"):
        SemanticIndex.load(tmp_path / "index", tiny, truncate_dim=16)
    with pytest.raises(ValueError, match=r"truncate_dim must be in 1\.\.32 \(the model's embedding dimension\), got 33"):
        SemanticIndex(tiny, truncate_dim=33)
