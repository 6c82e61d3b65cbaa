r"""Quantized corpora for :class:`~contrasent.SemanticIndex` (``quantization="int8"`` or ``"binary"``).

Notation: a corpus of :math:`N` float32 rows of dimension :math:`d` (unit rows for cosine), a float32
query :math:`q` (d,).

**int8** (as sentence-transformers' ``quantize_embeddings(precision="int8")``). Per-dimension ranges
``ranges`` (2, d) float32, :math:`a_t = \min_j x_{jt}`, :math:`b_t = \max_j x_{jt}` over the corpus the
index was calibrated on; step :math:`\delta_t = (b_t - a_t)/255` in float32 (1 where :math:`b_t = a_t`);
code :math:`c_{jt} = \mathrm{clip}(\lfloor (x_{jt} - a_t)/\delta_t \rfloor, 0, 255) - 128`, an int8,
computed in float32 exactly as sentence-transformers does (the same bits). A code stands for the middle
of its bucket,

.. math:: \hat x_{jt} = a_t + (c_{jt} + 128.5)\,\delta_t,

where sentence-transformers' ``_dequantize_embeddings`` takes the bucket's lower edge (``+ 128``): the
two differ by :math:`\delta/2` in every row, which adds the same :math:`q \cdot \delta/2` to every
document's score, so rankings are identical; the middle halves the worst error of a coordinate.

**Score** of document :math:`j` (both quantizations): :math:`s_j = \sum_t q_t \hat x_{jt}` in float64
(:func:`rescore_int8`). Queries are never quantized.

**int8 search**: candidates are the ``rescore_k`` best by :math:`\sum_t (q_t \delta_t)\, c_{jt}`, which
differs from :math:`s_j` by a constant per query, computed by :func:`contrasent.search.topk.exact_top_k`
(float32 products over chunks of codes converted to float32, so no float copy of the corpus is kept);
they are rescored by :math:`s_j` and the ``top_k`` best returned. As both stages rank by the same score
(up to float32 rounding of :math:`q_t \delta_t`), the result is the exact top-k of :math:`s_j`.

**binary** (sentence-transformers' ``"ubinary"``): ``np.packbits(x > 0)``, (N, ceil(d/8)) uint8. The
query's sign bits select the ``rescore_k`` documents of least Hamming distance (ties: lower position
first), by :func:`faiss.knn_hamming` (the kernel of ``faiss.IndexBinaryFlat``, without copying the codes
into an index) when faiss is installed, else by :func:`hamming_top_k` (numpy; the same candidates).
They are rescored by :math:`s_j` against the int8 codes of the same rows, which a loaded index reads
memory-mapped from disk: only the bits (d/8 bytes a row) and the ranges are held in memory. Where
sentence-transformers' ``semantic_search_faiss`` rescores against the 0/1 bits, the int8 rows here
recover most of the float ranking (the "binary + int8 rescoring" recipe).

:meth:`QuantizedCorpus.add` quantizes later rows with the ranges calibrated on the first ones (values
outside them are clipped to the nearest end): the codes of earlier rows never change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from contrasent.search.topk import exact_top_k, rank_candidates

QUANTIZATIONS = ("int8", "binary")
# bits set in each byte value: popcount of a uint8 by table lookup
_POPCOUNT = np.array([value.bit_count() for value in range(256)], dtype=np.uint8)
_RESCORE_BLOCK = 1 << 22  # float64 values per rescoring block: 32 MiB


def calibrate_ranges(embeddings: np.ndarray) -> np.ndarray:
    """(2, d) float32: each dimension's minimum and maximum over ``embeddings`` (N, d), N >= 1."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    return np.vstack((embeddings.min(axis=0), embeddings.max(axis=0)))


def int8_steps(ranges: np.ndarray) -> np.ndarray:
    """(d,) float32 bucket widths ``(max - min) / 255``; 1 for a constant dimension (as sentence-transformers)."""
    steps = (ranges[1] - ranges[0]) / np.float32(255)
    return np.where(steps == 0, np.float32(1), steps).astype(np.float32)


def quantize_int8(embeddings: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """(N, d) float rows -> (N, d) int8 codes ``clip(floor((x - min) / step), 0, 255) - 128`` (float32 arithmetic)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    buckets = np.clip(np.floor((embeddings - ranges[0]) / int8_steps(ranges)), 0, 255)
    return (buckets - 128).astype(np.int8)


def dequantize_int8(codes: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """(..., d) int8 codes -> float64 bucket middles ``min + (code + 128.5) * step``."""
    return ranges[0].astype(np.float64) + (codes.astype(np.float64) + 128.5) * int8_steps(ranges).astype(np.float64)


def pack_signs(embeddings: np.ndarray) -> np.ndarray:
    """(N, d) float rows -> (N, ceil(d/8)) uint8: bit t of a row is ``x_t > 0``, first dimension in the high bit."""
    return np.packbits(np.asarray(embeddings) > 0, axis=-1)


def hamming_top_k(
    queries: np.ndarray, codes: np.ndarray, k: int, query_chunk: int = 64, corpus_chunk: int = 8192
) -> np.ndarray:
    """(Q, min(k, N)) int64 positions of the codes (N, b) nearest the query codes (Q, b) in Hamming distance,
    ordered by (distance, position): XOR, then a popcount table, over chunks (memory ``query_chunk ×
    corpus_chunk × b`` bytes)."""
    n = len(codes)
    k = min(k, n)
    if k == 0:
        return np.zeros((len(queries), 0), dtype=np.int64)
    found = []
    for q_start in range(0, len(queries), query_chunk):
        query = queries[q_start:q_start + query_chunk, None, :]
        best = np.zeros((len(query), 0), dtype=np.int64)
        for c_start in range(0, n, corpus_chunk):
            block = codes[c_start:c_start + corpus_chunk]
            distances = _POPCOUNT[np.bitwise_xor(query, block[None])].sum(axis=2, dtype=np.int64)
            # one integer per (distance, position): unique, so the selection is exact at ties
            keys = np.concatenate([best, distances * n + np.arange(c_start, c_start + len(block))], axis=1)
            best = np.partition(keys, k - 1, axis=1)[:, :k] if keys.shape[1] > k else keys
        found.append(np.sort(best, axis=1) % n)
    return np.concatenate(found) if found else np.zeros((0, k), dtype=np.int64)


def faiss_hamming_top_k(queries: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """:func:`hamming_top_k` by faiss (its heap keeps, at equal distance, the lower position)."""
    import faiss

    k = min(k, len(codes))
    distances, positions = faiss.knn_hamming(np.ascontiguousarray(queries), np.ascontiguousarray(codes), k)
    order = np.lexsort((positions, distances), axis=1)  # (distance, position), whatever faiss's own order
    return np.take_along_axis(positions.astype(np.int64), order, axis=1)


def rescore_int8(queries: np.ndarray, codes: np.ndarray, ranges: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(Q, m) float64 scores ``Σ_t q_t · x̂_t`` of the rows ``positions`` (Q, m) of ``codes`` (N, d) int8
    (in memory or memory-mapped: only these rows are read) for the queries (Q, d)."""
    scores = np.empty(positions.shape, dtype=np.float64)
    rows_per_block = max(1, _RESCORE_BLOCK // max(1, positions.shape[1] * codes.shape[1]))
    for start in range(0, len(positions), rows_per_block):
        block = positions[start:start + rows_per_block]
        documents = dequantize_int8(np.asarray(codes[block.ravel()]).reshape(*block.shape, -1), ranges)
        query = np.asarray(queries[start:start + rows_per_block], dtype=np.float64)
        scores[start:start + rows_per_block] = (documents * query[:, None, :]).sum(axis=-1)
    return scores


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class QuantizedCorpus:
    """The rows of a quantized index: ``ranges`` (2, d) float32, ``int8`` (N, d) codes and, for
    ``"binary"``, ``bits`` (N, ceil(d/8)) uint8. ``int8`` may be a memory-mapped array (a loaded index)."""

    def __init__(self, quantization: str, dim: int, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.quantization = quantization
        self.dim = dim
        arrays = arrays or {}
        self.ranges: np.ndarray | None = arrays.get("ranges")
        self.int8: np.ndarray = arrays.get("int8", np.zeros((0, dim), dtype=np.int8))
        self.bits: np.ndarray | None = (arrays.get("bits", np.zeros((0, (dim + 7) // 8), dtype=np.uint8))
                                        if quantization == "binary" else None)

    def __len__(self) -> int:
        return len(self.int8)

    @classmethod
    def from_blocks(cls, quantization: str, dim: int, sample: np.ndarray, blocks: Iterable[np.ndarray]) -> QuantizedCorpus:
        """The codes of a corpus read block by block (e.g. from shards): the int8 ranges calibrated on
        ``sample`` (n, d) float32 rows (values outside are clipped), then each (m, d) block quantized; only the
        codes are kept (1 byte per value, and 1 bit for binary), never the float32 rows."""
        ranges = calibrate_ranges(sample)
        int8, bits = [], []
        for rows in blocks:
            int8.append(quantize_int8(rows, ranges))
            if quantization == "binary":
                bits.append(pack_signs(rows))
        arrays = {"ranges": ranges, "int8": np.concatenate(int8) if int8 else np.zeros((0, dim), dtype=np.int8)}
        if quantization == "binary":
            arrays["bits"] = np.concatenate(bits) if bits else np.zeros((0, (dim + 7) // 8), dtype=np.uint8)
        return cls(quantization, dim, arrays)

    def add(self, embeddings: np.ndarray) -> None:
        """Quantize (n, d) float32 rows and append them; the first non-empty call calibrates the ranges."""
        if len(embeddings) == 0:
            return
        if self.ranges is None:
            self.ranges = calibrate_ranges(embeddings)
        # a memory-mapped int8 becomes an in-memory array here: appending rewrites it
        self.int8 = np.concatenate([self.int8, quantize_int8(embeddings, self.ranges)])
        if self.bits is not None:
            self.bits = np.concatenate([self.bits, pack_signs(embeddings)])

    def arrays(self) -> dict[str, np.ndarray]:
        """What a saved index stores: ``{"ranges", "int8"}`` and ``"bits"`` for binary."""
        stored: dict[str, Any] = {"ranges": self.ranges, "int8": self.int8}
        if self.bits is not None:
            stored["bits"] = self.bits
        return stored

    def bytes_in_memory(self) -> int:
        """Bytes of the arrays held in memory (a memory-mapped array counts none)."""
        return sum(array.nbytes for array in self.arrays().values()
                   if array is not None and not isinstance(array, np.memmap))

    def search(
        self, queries: np.ndarray, k: int, rescore_k: int, dtype: str = "float32", use_faiss: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each float32 query (Q, d) by the score :math:`s_j` (module docstring):
        ``(scores, positions)``, (Q, k) float64 and int64, best first, ties by position.

        ``max(k, rescore_k)`` candidates (at most N) are rescored; ``use_faiss``: the binary candidates by
        faiss (default: when it is installed) or numpy.
        """
        assert self.ranges is not None, "searched before any row was added"
        keep = min(len(self), max(k, rescore_k))
        if self.bits is not None:
            query_bits = pack_signs(queries)
            faiss_ok = faiss_available() if use_faiss is None else use_faiss
            candidates = (faiss_hamming_top_k(query_bits, self.bits, keep) if faiss_ok
                          else hamming_top_k(query_bits, self.bits, keep))
        else:
            scaled = queries * int8_steps(self.ranges)  # ranks as s_j, less a constant per query
            _, candidates = exact_top_k(scaled, self.int8, keep, dtype=dtype)
        return rank_candidates(rescore_int8(queries, self.int8, self.ranges, candidates), candidates, k)
