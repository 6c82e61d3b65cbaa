r"""Exact top-k search by inner product, whose results do not depend on how the work is chunked.

Search, mining and retrieval evaluation all rank a corpus for many queries by inner product (cosine
similarity on L2-normalised rows). A float32 matrix product is fast, but its last bits depend on the
BLAS kernel, and the kernel (its blocking, its vector width) changes with the shapes of the operands and
with the CPU. Chunking the corpus or the queries differently therefore changes scores in the last bit,
and with them the order of near-ties. So the search runs in two stages:

1. **select** candidates with chunked matrix products (float32, or bfloat16 for speed) and a running
   top-:math:`k'`, :math:`k' = k + \max(k, 16)` per query: the extra candidates cover every document
   whose float32 score is within rounding error of the :math:`k`-th;
2. **rescore** the candidates with :func:`rescore`: each score is the float64 sum of the exact
   products :math:`q_i c_i` of the float32 vectors, computed row by row by the same code whatever the
   chunk shapes, then rank by (score descending, corpus position ascending).

Guarantee: the scores are a function of the two vectors only (identical bits for any chunking, thread
count or batch composition on a given machine) and within :math:`\sim 10^{-15}` of the exact inner
products; the ranking is the exact one with ties broken by position, and the set of the :math:`k` best
equals the exact set unless more than :math:`\max(k, 16)` documents score within float32 rounding of the
:math:`k`-th (a corpus full of duplicates of one text). Memory: one ``query_chunk × corpus_chunk`` score
block plus ``query_chunk × k' × d`` float64 values for the rescoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

MIN_EXTRA_CANDIDATES = 16
_RESCORE_BLOCK = 1 << 22  # float64 values per rescoring block: 32 MiB


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """(n, d) rows scaled to unit L2 norm, as float32; an all-zero row stays zero (cosine 0 to anything)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


def candidate_count(k: int, corpus_size: int) -> int:
    """How many candidates stage 1 keeps for a top-``k`` search: ``k + max(k, 16)``, at most the corpus."""
    return min(corpus_size, k + max(k, MIN_EXTRA_CANDIDATES))


def rescore(queries: np.ndarray, corpus: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Scores of selected documents, reproducibly: (Q, d) queries, (N, d) corpus, (Q, m) positions -> (Q, m) float64.

    ``score[i, j] = Σ_t float64(queries[i, t]) · float64(corpus[positions[i, j], t])``: the products of two
    float32 numbers are exact in float64 and each row is summed by the same (numpy pairwise) reduction
    over d, so a score depends on its two vectors only. A position of -1 (no document) scores -inf.
    """
    queries = np.asarray(queries)
    positions = np.asarray(positions, dtype=np.int64)
    scores = np.empty(positions.shape, dtype=np.float64)
    if positions.size == 0:
        return scores
    rows_per_block = max(1, _RESCORE_BLOCK // max(1, positions.shape[1] * corpus.shape[1]))
    for start in range(0, positions.shape[0], rows_per_block):
        block = positions[start:start + rows_per_block]
        documents = np.asarray(corpus[np.maximum(block, 0)], dtype=np.float64)  # (b, m, d)
        products = documents * np.asarray(queries[start:start + rows_per_block], dtype=np.float64)[:, None, :]
        scores[start:start + rows_per_block] = products.sum(axis=-1)
    scores[positions < 0] = -np.inf
    return scores


def rank_candidates(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row's candidates by (score descending, position ascending); -1 positions last."""
    order = np.lexsort((np.where(positions < 0, np.iinfo(np.int64).max, positions), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(positions, order, axis=1)


def exact_top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    dtype: str = "float32",
    query_chunk: int = 256,
    corpus_chunk: int = 32768,
    selection_corpus: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` documents of ``corpus`` (N, d) with the highest inner product with each query (Q, d).

    Args:
        queries, corpus: float32 arrays (L2-normalise both for cosine similarity); ``corpus`` may be a
            memory-mapped array.
        k: how many documents per query; ``min(k, N)`` are returned.
        dtype: precision of the selecting products, ``"float32"`` or ``"bfloat16"`` (faster on CPUs and
            GPUs with bf16 units; the rescoring makes the scores exact either way).
        query_chunk, corpus_chunk: block sizes of the selecting products (memory, not results).
        selection_corpus: ``corpus`` already as a torch tensor of ``dtype``, kept by a caller that
            searches the same corpus many times (saves converting it on every call).

    Returns:
        ``(scores, positions)``: (Q, min(k, N)) float64 scores (see :func:`rescore`) and int64 corpus
        positions, best first, ties by position.
    """
    import torch

    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    queries = np.asarray(queries, dtype=np.float32)
    n = corpus.shape[0]
    k = min(k, n)
    if k == 0 or len(queries) == 0:
        return np.zeros((len(queries), k)), np.zeros((len(queries), k), dtype=np.int64)
    keep = candidate_count(k, n)
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    all_scores, all_positions = [], []
    for q_start in range(0, len(queries), query_chunk):
        query_block = queries[q_start:q_start + query_chunk]
        query = torch.from_numpy(query_block).to(torch_dtype)
        best_scores = torch.empty((len(query), 0))
        best_positions = torch.empty((len(query), 0), dtype=torch.long)
        for c_start in range(0, n, corpus_chunk):
            if selection_corpus is not None:
                block = selection_corpus[c_start:c_start + corpus_chunk]
            else:
                # a read-only (memory-mapped) block is copied: torch warns on non-writable arrays
                block = torch.from_numpy(np.require(corpus[c_start:c_start + corpus_chunk], np.float32, "W"))
            scores = (query @ block.to(torch_dtype).T).float()
            top = scores.topk(min(keep, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, top.values], dim=1)
            merged_positions = torch.cat([best_positions, top.indices + c_start], dim=1)
            kept = merged_scores.topk(min(keep, merged_scores.shape[1]), dim=1).indices
            best_scores, best_positions = merged_scores.gather(1, kept), merged_positions.gather(1, kept)
        positions = best_positions.numpy()
        scores, positions = rank_candidates(rescore(query_block, corpus, positions), positions, k)
        all_scores.append(scores)
        all_positions.append(positions)
    return np.concatenate(all_scores), np.concatenate(all_positions)
