"""The one exact top-k: scores and rankings that do not depend on chunking, checked against float64 loops."""

from __future__ import annotations

import numpy as np
import pytest

from contrasent.search.topk import candidate_count, exact_top_k, l2_normalize, rank_candidates, rescore

CHUNKINGS = [(256, 32768), (5, 64), (1, 7), (3, 1000)]


def float64_reference(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every score by an explicit float64 loop; positions by (score descending, position ascending)."""
    scores = np.array([[sum(float(a) * float(b) for a, b in zip(q, c)) for c in corpus] for q in queries])
    positions = np.array([sorted(range(len(corpus)), key=lambda j, row=row: (-row[j], j))[:k] for row in scores])
    return np.take_along_axis(scores, positions, axis=1), positions


def random_unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return l2_normalize(rng.standard_normal((n, d)).astype(np.float32))


@pytest.mark.parametrize(("query_chunk", "corpus_chunk"), CHUNKINGS)
def test_top_k_equals_a_float64_loop(query_chunk, corpus_chunk) -> None:
    rng = np.random.default_rng(0)
    corpus, queries = random_unit(rng, 150, 12), random_unit(rng, 9, 12)
    want_scores, want_positions = float64_reference(queries, corpus, 10)
    scores, positions = exact_top_k(queries, corpus, 10, query_chunk=query_chunk, corpus_chunk=corpus_chunk)
    assert np.array_equal(positions, want_positions)
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=1e-14)


def test_scores_and_ranking_are_identical_for_every_chunking() -> None:
    """The guarantee of `contrasent.search.topk`: a score depends on its two vectors only, so any chunking
    (which changes the BLAS kernel of the selecting products) returns the same bits."""
    rng = np.random.default_rng(1)
    # one decimal: many exact ties, and duplicated documents
    corpus = l2_normalize(np.concatenate([rng.normal(size=(300, 8)).round(1)] * 2).astype(np.float32))
    queries = l2_normalize(rng.normal(size=(23, 8)).round(1).astype(np.float32))
    results = [exact_top_k(queries, corpus, 12, query_chunk=q, corpus_chunk=c) for q, c in CHUNKINGS]
    for scores, positions in results[1:]:
        assert np.array_equal(scores, results[0][0]) and np.array_equal(positions, results[0][1])
    scores, positions = results[0]
    tied = scores[:, :-1] == scores[:, 1:]
    assert tied.any()  # the duplicates tie exactly ...
    assert (positions[:, :-1][tied] < positions[:, 1:][tied]).all()  # ... and are ordered by position


def test_rescore_of_a_pair_does_not_depend_on_its_neighbours() -> None:
    rng = np.random.default_rng(2)
    corpus, queries = random_unit(rng, 50, 384), random_unit(rng, 6, 384)
    positions = rng.integers(0, 50, size=(6, 20))
    together = rescore(queries, corpus, positions)
    alone = np.array([[rescore(queries[i:i + 1], corpus, positions[i:i + 1, j:j + 1])[0, 0] for j in range(20)]
                      for i in range(6)])
    assert np.array_equal(together, alone)
    assert rescore(queries[:1], corpus, np.array([[-1]]))[0, 0] == -np.inf


def test_bfloat16_selection_finds_the_same_documents_on_random_data() -> None:
    rng = np.random.default_rng(3)
    corpus, queries = random_unit(rng, 2000, 32), random_unit(rng, 20, 32)
    _, want_positions = exact_top_k(queries, corpus, 10)
    scores, positions = exact_top_k(queries, corpus, 10, dtype="bfloat16")
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(positions, want_positions)]) >= 0.98
    np.testing.assert_array_equal(scores, rescore(queries, corpus, positions))  # exact scores, not bf16 ones


def test_edge_cases() -> None:
    rng = np.random.default_rng(4)
    corpus, queries = random_unit(rng, 5, 4), random_unit(rng, 3, 4)
    _, positions = exact_top_k(queries, corpus, 50)
    assert positions.shape == (3, 5) and sorted(positions[0]) == [0, 1, 2, 3, 4]
    assert exact_top_k(queries[:0], corpus, 3)[1].shape == (0, 3)
    assert candidate_count(10, 1000) == 26 and candidate_count(100, 1000) == 200 and candidate_count(10, 12) == 12
    with pytest.raises(ValueError, match="k must be a positive integer"):
        exact_top_k(queries, corpus, 0)
    with pytest.raises(ValueError, match="dtype"):
        exact_top_k(queries, corpus, 2, dtype="float16")
    ranked = rank_candidates(np.array([[0.5, -np.inf, 0.5, 0.9]]), np.array([[7, -1, 3, 9]]), 4)
    assert ranked[1].tolist() == [[9, 3, 7, -1]]


def test_l2_normalize_keeps_zero_rows_zero() -> None:
    normalized = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert normalized.dtype == np.float32
    np.testing.assert_allclose(normalized, [[0.6, 0.8], [0.0, 0.0]])
