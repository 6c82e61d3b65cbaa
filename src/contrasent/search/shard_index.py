"""The rows of a folder of shards (:func:`contrasent.search.corpus_shards.encode_corpus`) as the corpus of a
:class:`~contrasent.SemanticIndex` (:meth:`~contrasent.SemanticIndex.from_shards`): searched block by block
from the memory-mapped shards, never held in memory as one matrix.

Memory: the ids of every row (the index's metadata), and while searching one block of ``block_size`` rows
as float32 (a shard is unmapped before the next is read), plus the running top-k of each query. A faiss
or quantized index built from the shards holds its own structure (the faiss index; the codes), built
block by block too; its candidates are rescored with rows read from the shards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.search.shard_manifest import read_manifest
from contrasent.search.shard_mining import check_shard_corpus
from contrasent.search.shard_reader import load_shards
from contrasent.search.topk import l2_normalize

# rows of the faiss training sample (IVF needs about 40 per list: 1024 lists at this size)
FAISS_TRAINING_ROWS = 65_536


class ShardCorpus:
    """A complete folder of shards: ``shape`` (count, dim), the rows by position (``corpus[positions]``, for
    :func:`contrasent.search.topk.rescore`) and :meth:`blocks` (for
    :func:`contrasent.search.blockwise.blockwise_top_k`).

    Rows are returned as float32, L2-normalised when ``normalize`` (cosine similarity).

    Args:
        folder: the shards' folder; ``manifest``: its manifest (checked complete by the caller).
        block_size: at most this many rows per block (None: one block per shard).
        normalize: L2-normalise rows as they are read.
    """

    def __init__(self, folder: Path, manifest: dict[str, Any], block_size: int | None, normalize: bool) -> None:
        self.folder = folder
        self.manifest = manifest
        self.block_size = block_size
        self.normalize = normalize
        self.size = manifest["count"]
        self.dim = manifest["embedding_dim"]
        self.shape = (self.size, self.dim)
        self.starts = np.array([shard["start"] for shard in manifest["shards"]], dtype=np.int64)

    def ids(self) -> list[Any]:
        """Every row's id, in corpus order (read from the shards' id files)."""
        ids: list[Any] = []
        for shard_ids, _ in load_shards(self.folder):
            ids.extend(shard_ids)
        return ids

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        return l2_normalize(rows) if self.normalize else np.array(rows)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(positions (n,) int64, rows (n, dim) float32)``, shard after shard, in corpus order (each shard's
        file memory-mapped while its blocks are read; shapes were checked when the ids were read)."""
        for shard in self.manifest["shards"]:
            embeddings = self._shard(shard)
            step = self.block_size or max(1, len(embeddings))
            for begin in range(0, len(embeddings), step):
                stop = min(begin + step, len(embeddings))
                positions = np.arange(shard["start"] + begin, shard["start"] + stop, dtype=np.int64)
                yield positions, self._rows(embeddings[begin:stop])

    def _shard(self, shard: dict[str, Any]) -> np.ndarray:
        return np.load(self.folder / shard["embeddings"], mmap_mode="r", allow_pickle=False)

    def __getitem__(self, positions: np.ndarray) -> np.ndarray:
        """The rows at ``positions`` (any shape of int64 corpus positions): shape ``positions.shape + (dim,)``.
        Only the shards holding them are opened, and only their pages are read."""
        positions = np.asarray(positions, dtype=np.int64)
        flat = positions.reshape(-1)
        out = np.empty((len(flat), self.dim), dtype=np.float32)
        shard_of = np.searchsorted(self.starts, flat, side="right") - 1
        for number in np.unique(shard_of):
            shard = self.manifest["shards"][number]
            embeddings = self._shard(shard)
            chosen = shard_of == number
            out[chosen] = self._rows(embeddings[flat[chosen] - shard["start"]])
        return out.reshape(positions.shape + (self.dim,))

    def training_sample(self, rows: int = FAISS_TRAINING_ROWS) -> np.ndarray:
        """Up to ``rows`` rows spread evenly over the corpus (every shard contributes), float32."""
        if self.size <= rows:
            return np.concatenate([block for _, block in self.blocks()])
        return self[np.linspace(0, self.size - 1, rows).astype(np.int64)]


def open_shard_corpus(
    directory: str | os.PathLike, corpus: str | os.PathLike | None, block_size: int | None, normalize: bool,
) -> tuple[ShardCorpus, list[Any], list[str | None]]:
    """The shards of ``directory`` (complete), their ids, and the texts of ``corpus`` (the file they were
    encoded from: its SHA-256 and its ids must be the manifest's; None: no texts, each ``None``).

    Raises:
        FileNotFoundError: no manifest, a shard file missing. ValueError: an incomplete encoding; a corpus
            file other than the one encoded, or whose ids differ from the shards' (the first difference named).
    """
    from contrasent.search.corpus import read_corpus

    folder = Path(directory)
    if block_size is not None and (isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1):
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")
    texts: list[str | None]
    if corpus is not None:
        corpus_ids, corpus_texts = read_corpus(corpus)
        manifest = check_shard_corpus(folder, corpus_texts, corpus)
    else:
        manifest = read_manifest(folder)
        load_shards(folder)  # refuses an incomplete encoding
    shards = ShardCorpus(folder, manifest, block_size, normalize)
    ids = shards.ids()
    if corpus is None:
        texts = [None] * len(ids)
    else:
        if corpus_ids != ids:
            first = next(i for i, (a, b) in enumerate(zip(corpus_ids, ids)) if a != b)
            raise ValueError(f"corpus file {corpus} row {first} has the id {corpus_ids[first]!r}, but the shards in "
                             f"{folder} hold {ids[first]!r} there: pass the corpus file they were encoded from")
        texts = list(corpus_texts)
    return shards, ids, texts
