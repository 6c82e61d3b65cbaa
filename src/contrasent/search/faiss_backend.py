"""The faiss backend of :class:`~contrasent.SemanticIndex`: building, extending, writing and reading a faiss
inner-product index (``pip install 'contrasent[faiss]'``). faiss only selects candidates; the index
rescores them as the exact search does (:mod:`contrasent.search.topk`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def import_faiss() -> Any:
    """The ``faiss`` module, or an ``ImportError`` saying how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "backend='faiss' needs the faiss package: pip install 'contrasent[faiss]' (faiss-cpu)"
        ) from error
    return faiss


def new_index(factory: str, dim: int) -> Any:
    """An empty inner-product index of ``dim`` from ``factory`` (``"Flat"``: ``IndexFlatIP``)."""
    faiss = import_faiss()
    return faiss.IndexFlatIP(dim) if factory == "Flat" else faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)


def up_to_date(index: Any, factory: str, embeddings: np.ndarray) -> Any:
    """``index`` (``None``: a new one from ``factory``, ``"Flat"`` being ``IndexFlatIP``) trained if it
    needs it and holding every row of ``embeddings`` (the rows it lacks are appended)."""
    if index is None:
        index = new_index(factory, embeddings.shape[1])
    if not index.is_trained:
        index.train(embeddings)
    if index.ntotal < len(embeddings):
        index.add(embeddings[index.ntotal:])
    return index


def from_blocks(factory: str, sample: np.ndarray, blocks: Iterable[np.ndarray]) -> Any:
    """A new index from ``factory`` trained (if it needs it) on ``sample`` (n, d) float32 rows, then
    given each (m, d) block of the corpus in turn: the corpus is never one matrix in memory (the index
    keeps what its factory keeps: all rows for ``"Flat"``, list assignments and codes for IVF-PQ ...)."""
    index = new_index(factory, sample.shape[1])
    if not index.is_trained:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    for rows in blocks:
        index.add(np.ascontiguousarray(rows, dtype=np.float32))
    return index


def write_faiss(index: Any, path: Path) -> None:
    """Write ``index`` in faiss's own format."""
    import_faiss().write_index(index, str(path))


def read_faiss(path: Path, count: int, dim: int) -> Any:
    """The faiss index stored at ``path`` when it holds ``count`` vectors of ``dim`` (else ``None``: it
    is rebuilt when needed).

    Raises:
        ValueError: a file faiss cannot read, named.
    """
    try:
        stored = import_faiss().read_index(str(path))
    except RuntimeError as error:  # faiss reports a damaged file as a RuntimeError
        raise ValueError(f"{path}: not a faiss index faiss can read ({error}); delete it to rebuild it") from None
    return stored if stored.ntotal == count and stored.d == dim else None
