"""Quantized indexes: codes against sentence-transformers, Hamming search numpy = faiss, search against a
float64 reference of the documented score, save / load, info(), refused arguments and files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sentence_transformers.util.quantization import quantize_embeddings

from contrasent import SemanticIndex, SentenceEncoder
from contrasent.search.quantization import (
    calibrate_ranges,
    faiss_hamming_top_k,
    hamming_top_k,
    pack_signs,
    quantize_int8,
)
from contrasent.search.topk import l2_normalize


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def quantized_index(model, quantization: str, n: int = 800, seed: int = 0, **options) -> SemanticIndex:
    index = SemanticIndex(model, quantization=quantization, **options)
    index.add([f"doc {i}" for i in range(n)], embeddings=unit_rows(n, model.embedding_dim, seed))
    return index


# ----------------------------------------------------------------------------------------------------
# Codes: as sentence-transformers' quantize_embeddings
# ----------------------------------------------------------------------------------------------------
def test_int8_codes_and_ranges_are_sentence_transformers_bit_for_bit() -> None:
    corpus, others = unit_rows(3000, 384, 0), unit_rows(500, 384, 1)
    ranges = calibrate_ranges(corpus)
    assert np.array_equal(ranges, np.vstack((corpus.min(axis=0), corpus.max(axis=0))))
    theirs = quantize_embeddings(corpus, precision="int8", calibration_embeddings=corpus)
    assert theirs.dtype == np.int8 and np.array_equal(quantize_int8(corpus, ranges), theirs)
    # rows added later reuse the ranges, clipped: as quantize_embeddings(ranges=...)
    assert np.array_equal(quantize_int8(others, ranges),
                          quantize_embeddings(others, precision="int8", ranges=ranges))


@pytest.mark.parametrize("dim", [384, 37])
def test_binary_codes_are_sentence_transformers_ubinary(dim) -> None:
    rows = unit_rows(200, dim, 2)
    rows[0, :5] = 0.0  # zero is not positive: bit 0, as in sentence-transformers
    codes = pack_signs(rows)
    assert codes.dtype == np.uint8 and codes.shape == (200, (dim + 7) // 8)
    assert np.array_equal(codes, quantize_embeddings(rows, precision="ubinary"))


# ----------------------------------------------------------------------------------------------------
# Hamming search: numpy = faiss = brute force, ties by position
# ----------------------------------------------------------------------------------------------------
def brute_force_hamming(queries: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    bits_q, bits_c = np.unpackbits(queries, axis=1), np.unpackbits(codes, axis=1)
    distances = (bits_q[:, None, :] != bits_c[None, :, :]).sum(axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]  # stable: equal distances by position


@pytest.mark.parametrize("dim", [16, 384])  # 16 bits: most candidates tie with others at the cut
def test_numpy_and_faiss_hamming_give_the_same_candidates(dim) -> None:
    faiss = pytest.importorskip("faiss")
    codes, queries = pack_signs(unit_rows(3000, dim, 3)), pack_signs(unit_rows(40, dim, 4))
    want = brute_force_hamming(queries, codes, 40)
    ours = hamming_top_k(queries, codes, 40, query_chunk=7, corpus_chunk=500)  # many chunks merged
    assert np.array_equal(ours, want)
    assert np.array_equal(faiss_hamming_top_k(queries, codes, 40), want)
    flat = faiss.IndexBinaryFlat(dim)  # the index the kernel belongs to: the same set
    flat.add(codes)
    _, positions = flat.search(queries, 40)
    assert [set(row) for row in positions] == [set(row) for row in want]


def test_hamming_asks_for_more_than_the_corpus() -> None:
    codes, queries = pack_signs(unit_rows(5, 64, 5)), pack_signs(unit_rows(2, 64, 6))
    assert hamming_top_k(queries, codes, 10).shape == (2, 5)
    assert np.array_equal(hamming_top_k(queries, codes, 10), brute_force_hamming(queries, codes, 5))


# ----------------------------------------------------------------------------------------------------
# Search: against a float64 reference of the documented score
# ----------------------------------------------------------------------------------------------------
def reference_scores(query: np.ndarray, codes: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """s_j = Σ_t q_t (a_t + (c_jt + 128.5) δ_t), δ_t = (b_t - a_t) / 255 in float32, one document at a time."""
    steps = ((ranges[1] - ranges[0]) / np.float32(255)).astype(np.float64)
    starts = ranges[0].astype(np.float64)
    query = query.astype(np.float64)
    return np.array([sum(query[t] * (starts[t] + (int(row[t]) + 128.5) * steps[t]) for t in range(len(row)))
                     for row in codes])


def stored_rows(index: SemanticIndex, rows: np.ndarray) -> np.ndarray:
    """The float rows a cosine index quantizes: normalized again by ``add`` (last bits may move)."""
    return l2_normalize(rows) if index.similarity == "cosine" else rows


def ranked(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((positions, -scores))[:k]  # score descending, position ascending
    return scores[order], positions[order]


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_int8_search_is_the_exact_top_k_of_the_documented_score(tiny, similarity) -> None:
    index = quantized_index(tiny, "int8", similarity=similarity)
    corpus = stored_rows(index, unit_rows(800, tiny.embedding_dim, 0))
    queries = np.random.default_rng(7).standard_normal((6, tiny.embedding_dim)).astype(np.float32)
    if similarity == "cosine":
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    ranges = calibrate_ranges(corpus)
    codes = quantize_int8(corpus, ranges)
    scores, positions = index.search_embeddings(queries, 10)
    for query, row_scores, row_positions in zip(queries, scores, positions):
        want_scores, want_positions = ranked(reference_scores(query, codes, ranges), np.arange(800), 10)
        assert np.array_equal(row_positions, want_positions)
        assert np.allclose(row_scores, want_scores, rtol=2e-7, atol=1e-7)  # float32 scores


def test_binary_search_rescores_the_hamming_candidates_against_int8(tiny) -> None:
    index = quantized_index(tiny, "binary", rescore_k=25)
    corpus = stored_rows(index, unit_rows(800, tiny.embedding_dim, 0))
    queries = unit_rows(6, tiny.embedding_dim, 8)
    ranges = calibrate_ranges(corpus)
    codes = quantize_int8(corpus, ranges)
    candidates = brute_force_hamming(pack_signs(queries), pack_signs(corpus), 25)
    for use_faiss in (False, True):
        if use_faiss:
            pytest.importorskip("faiss")
        scores, positions = index._quantized.search(queries, 10, 25, use_faiss=use_faiss)
        for query, pool, row_scores, row_positions in zip(queries, candidates, scores, positions):
            want_scores, want_positions = ranked(reference_scores(query, codes[pool], ranges), pool, 10)
            assert np.array_equal(row_positions, want_positions)
            assert np.allclose(row_scores, want_scores, rtol=0, atol=1e-12)


def test_quantized_search_finds_texts_with_a_real_model(tiny) -> None:
    docs = ["A cat sleeps on the sofa.", "Stock markets fell sharply today.", "The recipe needs two eggs.",
            "Dogs love to play fetch.", "Interest rates were raised by the central bank."]
    for quantization in ("int8", "binary"):
        index = SemanticIndex.build(docs, tiny, quantization=quantization)
        assert [hits[0].text for hits in index.search(docs, top_k=1)] == docs


def test_add_reuses_the_calibrated_ranges(tiny) -> None:
    index = quantized_index(tiny, "binary", n=300)
    ranges = index._quantized.ranges.copy()
    later = 3 * unit_rows(50, tiny.embedding_dim, 9)  # beyond the ranges: clipped
    index.add([f"late {i}" for i in range(50)], embeddings=later)
    assert np.array_equal(index._quantized.ranges, ranges)
    assert np.array_equal(index._quantized.int8[300:], quantize_int8(later / 3, ranges))  # cosine: normalized
    assert np.array_equal(index._quantized.bits[300:], pack_signs(later))
    assert len(index) == 350 and index.search_embeddings(later[:1], 1)[1][0, 0] == 300


# ----------------------------------------------------------------------------------------------------
# info(), save / load
# ----------------------------------------------------------------------------------------------------
def test_info_counts_the_arrays_in_memory_and_the_files_on_disk(tiny, tmp_path) -> None:
    n, dim = 800, tiny.embedding_dim
    float_index = SemanticIndex(tiny)
    float_index.add([f"doc {i}" for i in range(n)], embeddings=unit_rows(n, dim, 0))
    assert float_index.info() == {"documents": n, "dim": dim, "quantization": None,
                                  "bytes_in_memory": n * dim * 4, "bytes_on_disk": None}
    int8 = quantized_index(tiny, "int8")
    assert int8.info()["bytes_in_memory"] == n * dim + 2 * dim * 4
    binary = quantized_index(tiny, "binary")
    assert binary.info()["bytes_in_memory"] == n * dim // 8 + n * dim + 2 * dim * 4  # built: int8 in memory
    binary.save(tmp_path / "binary")
    files = sum(path.stat().st_size for path in (tmp_path / "binary").iterdir())
    assert binary.info()["bytes_on_disk"] == files
    loaded = SemanticIndex.load(tmp_path / "binary", tiny)
    assert isinstance(loaded._quantized.int8, np.memmap)  # the int8 rows stay on disk
    assert loaded.info() == {"documents": n, "dim": dim, "quantization": "binary",
                             "bytes_in_memory": n * dim // 8 + 2 * dim * 4, "bytes_on_disk": files}


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_save_and_load_give_the_same_results(tiny, tmp_path, quantization) -> None:
    index = quantized_index(tiny, quantization, rescore_k=30)
    queries = unit_rows(9, tiny.embedding_dim, 10)
    index.save(tmp_path / "index")
    metadata = json.loads((tmp_path / "index" / "index.json").read_text())
    assert metadata["version"] == 3 and metadata["quantization"] == quantization and metadata["rescore_k"] == 30
    names = {"corpus.jsonl", "ranges.npy", "int8.npy"} | ({"binary.npy"} if quantization == "binary" else set())
    assert set(metadata["checksums"]) == names
    assert {path.name for path in (tmp_path / "index").iterdir()} == names | {"index.json"}
    loaded = SemanticIndex.load(tmp_path / "index", tiny)
    assert (loaded.quantization, loaded.rescore_k) == (quantization, 30)
    for got, want in zip(loaded.search_embeddings(queries, 10), index.search_embeddings(queries, 10)):
        assert np.array_equal(got, want)
    assert SemanticIndex.load(tmp_path / "index", tiny, rescore_k=12).rescore_k == 12


def test_a_float_index_is_still_saved_as_version_2(tiny, tmp_path) -> None:
    index = SemanticIndex(tiny)
    index.add(["a", "b"], embeddings=unit_rows(2, tiny.embedding_dim, 0))
    index.save(tmp_path / "index")
    metadata = json.loads((tmp_path / "index" / "index.json").read_text())
    assert metadata["version"] == 2 and metadata["quantization"] is None


def damaged(saved, tmp_path, damage):
    folder = tmp_path / "copy"
    shutil.copytree(saved, folder)
    damage(folder)
    return folder


def edit_metadata(change):
    def damage(folder):
        metadata = json.loads((folder / "index.json").read_text())
        change(metadata)
        (folder / "index.json").write_text(json.dumps(metadata))
    return damage


def flip_a_bit(name):
    def damage(folder):
        array = np.load(folder / name)
        array.reshape(-1)[5] ^= 1
        np.save(folder / name, array)
    return damage


DAMAGES = [
    ("bits edited", flip_a_bit("binary.npy"), ValueError, r"binary.npy has changed since the index was saved"),
    ("int8 edited", flip_a_bit("int8.npy"), ValueError, r"int8.npy has changed since the index was saved"),
    ("int8 of other rows", lambda f: np.save(f / "int8.npy", np.load(f / "int8.npy")[:-1]), ValueError,
     (r"int8.npy is int8 \(199, 32\); the binary index of index.json \(200 documents of dimension 32\) stores "
      r"int8 \(200, 32\)")),
    ("int8 as float", lambda f: np.save(f / "int8.npy", np.load(f / "int8.npy").astype(np.float32)), ValueError,
     r"int8.npy is float32"),
    ("no ranges", lambda f: (f / "ranges.npy").unlink(), FileNotFoundError, r"ranges.npy not found"),
    ("no checksum of the bits", edit_metadata(lambda m: m["checksums"].pop("binary.npy")), ValueError,
     r"records no checksum of binary.npy: it was not saved with this index; rebuild the index"),
    ("unknown quantization", edit_metadata(lambda m: m.update(quantization="int4")), ValueError,
     r"index.json: 'quantization' must be one of \('int8', 'binary'\), got 'int4'"),
    ("binary relabelled int8", edit_metadata(lambda m: m.update(quantization="int8")), ValueError,
     r"index.json records binary.npy, which a int8 index does not store"),
    ("version 3 without quantization", edit_metadata(lambda m: m.pop("quantization")), ValueError,
     r"index.json: no 'quantization' field"),
]


@pytest.fixture(scope="module")
def saved_binary(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "binary"
    quantized_index(tiny, "binary", n=200).save(folder)
    return folder


@pytest.mark.parametrize(("damage", "error", "message"), [case[1:] for case in DAMAGES],
                         ids=[case[0] for case in DAMAGES])
def test_an_inconsistent_quantized_index_is_refused_naming_the_file(saved_binary, tiny, tmp_path, damage, error,
                                                                    message) -> None:
    folder = damaged(saved_binary, tmp_path, damage)
    with pytest.raises(error, match=message):
        SemanticIndex.load(folder, tiny)


# ----------------------------------------------------------------------------------------------------
# Refused arguments
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"quantization": "int4"}, r"quantization must be None or one of \('int8', 'binary'\), got 'int4'"),
    ({"quantization": "int8", "rescore_k": 0}, r"rescore_k must be a positive integer, got 0"),
    ({"quantization": "binary", "rescore_k": -3}, r"rescore_k must be a positive integer, got -3"),
    ({"quantization": "binary", "rescore_k": 2.0}, r"rescore_k must be a positive integer, got 2.0"),
    ({"rescore_k": 40}, r"rescore_k=40 is for a quantized index"),
    ({"quantization": "int8", "backend": "faiss"}, r"quantization='int8' needs backend='exact'"),
])
def test_bad_arguments_are_named(tiny, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        SemanticIndex(tiny, **options)


def test_what_a_quantized_index_cannot_do_is_said(tiny, tmp_path) -> None:
    index = quantized_index(tiny, "int8", n=10)
    with pytest.raises(ValueError, match=r"quantization='int8' index keeps no float32 embeddings"):
        _ = index.embeddings
    with pytest.raises(ValueError, match=r"calibrated on its documents: add\(\) some before saving"):
        SemanticIndex(tiny, quantization="binary").save(tmp_path / "empty")
