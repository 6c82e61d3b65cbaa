"""Exact top-k over a corpus that comes in blocks (an in-memory matrix in slices, or shards on disk), with a
running top-k, so that neither a queries × corpus score matrix nor the whole corpus is ever held.

A corpus is anything with ``size`` (how many rows can be found), ``dim`` (their dimension) and ``blocks()``, an iterable of
``(positions, rows)``: the corpus positions (n,) int64 of the block's rows, increasing, and the rows
(n, d) float32, L2-normalised. Positions need not be consecutive (a corpus may leave rows out: repeated
texts). :func:`blockwise_top_k` searches every block with :func:`contrasent.search.topk.exact_top_k` (or
faiss's exact index, rescored the same way) and merges each block's best into the running best with
:func:`contrasent.search.topk.rank_candidates`. Every score is :func:`~contrasent.search.topk.rescore`'s,
a function of the two vectors only, and the ranking is by (score descending, position ascending), so the
result is the one search over the whole corpus at once gives, whatever the block sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import numpy as np

from contrasent.search.topk import candidate_count, exact_top_k, rank_candidates, rescore

# (queries (Q, d), rows (n, d), k) -> (scores (Q, min(k, n)) float64, row indices (Q, min(k, n)) int64)
BlockSearch = Callable[[np.ndarray, np.ndarray, int], "tuple[np.ndarray, np.ndarray]"]


class CorpusBlocks(Protocol):
    """A corpus searched block by block (module docstring)."""

    size: int
    dim: int

    def blocks(self) -> Iterable[tuple[np.ndarray, np.ndarray]]: ...


class MatrixBlocks:
    """An in-memory (N, d) float32 L2-normalised matrix, in slices of ``block_size`` rows (positions 0 .. N-1)."""

    def __init__(self, rows: np.ndarray, block_size: int | None = None) -> None:
        self.rows = rows
        self.size, self.dim = rows.shape
        self.block_size = block_size or max(1, self.size)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, self.size, self.block_size):
            stop = min(start + self.block_size, self.size)
            yield np.arange(start, stop, dtype=np.int64), self.rows[start:stop]


def exact_search(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:data:`BlockSearch` by chunked matrix products (:func:`contrasent.search.topk.exact_top_k`)."""
    return exact_top_k(queries, rows, k)


def faiss_search(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:data:`BlockSearch` with faiss's exact ``IndexFlatIP`` (built for the block), its candidates rescored
    as :func:`~contrasent.search.topk.exact_top_k` rescores them: the same scores and ties as :func:`exact_search`."""
    from contrasent.search.faiss_backend import import_faiss

    faiss = import_faiss()
    index = faiss.IndexFlatIP(rows.shape[1])
    index.add(np.ascontiguousarray(rows, dtype=np.float32))
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    _, candidates = index.search(queries, candidate_count(k, len(rows)))
    candidates = candidates.astype(np.int64)
    return rank_candidates(rescore(queries, rows, candidates), candidates, min(k, len(rows)))


def blockwise_top_k(
    queries: np.ndarray,
    corpus: CorpusBlocks,
    k: int,
    search: BlockSearch = exact_search,
    pairs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best corpus positions of each query, over all of ``corpus``'s blocks, and the scores of given pairs.

    Args:
        queries: (Q, d) float32, L2-normalised.
        corpus: its blocks (module docstring); read once.
        k: how many per query; ``min(k, corpus.size)`` are returned.
        search: how one block is searched (:func:`exact_search` or :func:`faiss_search`).
        pairs: (P, 2) int64 ``(query index, corpus position)`` pairs to score as the search scores (e.g. each
            row's labelled positive), found in whichever block holds them; None for none.

    Returns:
        ``(scores, positions, pair_scores)``: (Q, min(k, size)) float64 scores and int64 positions, best first,
        ties by position; (P,) float64 scores of ``pairs`` (NaN for a position in no block).
    """
    k = min(k, corpus.size)
    best_scores = np.empty((len(queries), 0))
    best_positions = np.empty((len(queries), 0), dtype=np.int64)
    pairs = np.empty((0, 2), dtype=np.int64) if pairs is None else np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    pair_scores = np.full(len(pairs), np.nan)
    for positions, rows in corpus.blocks():
        if len(positions) == 0:
            continue
        if k > 0 and len(queries):
            scores, local = search(queries, rows, k)
            best_scores, best_positions = rank_candidates(
                np.concatenate([best_scores, scores], axis=1),
                np.concatenate([best_positions, positions[local]], axis=1), k)
        if len(pairs):
            local = np.searchsorted(positions, pairs[:, 1])
            inside = (local < len(positions)) & (positions[np.minimum(local, len(positions) - 1)] == pairs[:, 1])
            if inside.any():
                pair_scores[inside] = rescore(queries[pairs[inside, 0]], rows, local[inside].reshape(-1, 1))[:, 0]
    return best_scores, best_positions, pair_scores
