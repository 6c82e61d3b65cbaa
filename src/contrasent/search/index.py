"""`SemanticIndex`: embed a corpus once, then find the texts nearest to queries.

Scores are cosine similarities (``similarity="cosine"``: embeddings L2-normalized when added, queries
when searched) or raw dot products (``"dot"``). Two backends:

- ``"exact"`` (default): brute force (:func:`contrasent.search.topk.exact_top_k`): ``Q @ Cᵀ`` over chunks of
  the corpus selects candidates with a running top-k, which are then rescored in float64 accumulation,
  so scores and ranking (ties by corpus position) do not depend on chunk sizes, thread counts or the
  CPU's BLAS kernel; memory is bounded by ``query_chunk × corpus_chunk`` scores. ``dtype="bfloat16"``
  does the selecting products in bf16 (about 2x faster on CPUs with native bf16 units, slower on
  others).
- ``"faiss"`` (``pip install 'contrasent[faiss]'``): any inner-product faiss index built from a factory
  string: ``"Flat"`` (exact, ``IndexFlatIP``), ``"HNSW32"``, ``"IVF1024,Flat"`` ... for large corpora.
  Its candidates are rescored like the exact search's, so ``"Flat"`` returns what ``"exact"`` returns.

Saved folders hold no pickle: ``embeddings.npy`` (float32, loaded with ``allow_pickle=False``),
``corpus.jsonl`` (ids and texts), ``index.json`` (settings and the model's identity), and
``faiss.index`` (faiss's own format) when the faiss index was built. Loading refuses a model of another
dimension, or one whose embeddings of a few fixed probe sentences differ from those recorded at build
time (a different model, or the same name with other weights; :mod:`contrasent.search.model_probe`).

Corpus files are read by :func:`contrasent.search.corpus.read_corpus`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from contrasent.hardware import warn_if_bfloat16_is_emulated
from contrasent.models.atomic_folder import FolderKind, atomic_folder
from contrasent.search.model_probe import check_same_model, model_probe
from contrasent.search.topk import candidate_count, exact_top_k, l2_normalize, rank_candidates, rescore

if TYPE_CHECKING:
    import torch

    from contrasent.models.encoder import SentenceEncoder

INDEX_FORMAT = "contrasent-semantic-index"
INDEX_VERSION = 1
METADATA_NAME = "index.json"
EMBEDDINGS_NAME = "embeddings.npy"
CORPUS_NAME = "corpus.jsonl"
FAISS_NAME = "faiss.index"
# What save writes and replaces (contrasent.models.atomic_folder): an earlier index, stale faiss.index included.
INDEX_FOLDER = FolderKind("search index", METADATA_NAME, (METADATA_NAME, EMBEDDINGS_NAME, CORPUS_NAME, FAISS_NAME))
SIMILARITIES = ("cosine", "dot")
BACKENDS = ("exact", "faiss")


class SearchResult(NamedTuple):
    """One hit: the document's id, its score (cosine or dot product) and its text."""

    id: Any
    score: float
    text: str


class SemanticIndex:
    """A corpus of texts, their embeddings under one model, and nearest-neighbour search.

    Args:
        model: a :class:`~contrasent.SentenceEncoder`, or a folder / Hub id to load one from.
        similarity: ``"cosine"`` (default) or ``"dot"``.
        backend: ``"exact"`` (default) or ``"faiss"``.
        dtype: precision of the exact search's products: ``"float32"`` or ``"bfloat16"``.
        faiss_factory: faiss index description for ``backend="faiss"`` (default ``"Flat"``: exact).
        batch_size: texts per forward pass when encoding.
        model_name: recorded in saved indexes so ``load`` can reload the model; defaults to ``model``
            when that is a path or id.

    Example:
        >>> index = SemanticIndex.build(["A cat sat.", "Stocks fell."], "sentence-transformers/all-MiniLM-L6-v2")
        >>> index.search("markets dropped", top_k=1)
        [SearchResult(id=1, score=..., text='Stocks fell.')]
    """

    def __init__(
        self,
        model: SentenceEncoder | str | os.PathLike,
        *,
        similarity: str = "cosine",
        backend: str = "exact",
        dtype: str = "float32",
        faiss_factory: str = "Flat",
        batch_size: int = 64,
        model_name: str | None = None,
    ) -> None:
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
        if dtype == "bfloat16":
            warn_if_bfloat16_is_emulated("SemanticIndex(dtype='bfloat16')")
        if isinstance(model, (str, os.PathLike)):
            from contrasent.models.encoder import SentenceEncoder

            model_name = model_name or str(model)
            model = SentenceEncoder.from_pretrained(model)
        self.model = model
        self.model_name = model_name
        self.similarity = similarity
        self.backend = backend
        self.dtype = dtype
        self.faiss_factory = faiss_factory
        self.batch_size = batch_size
        self.ids: list[Any] = []
        self.texts: list[str] = []
        self._id_positions: dict[Any, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix: torch.Tensor | None = None  # the blocks joined, in the search dtype
        self._faiss: Any = None

    # ------------------------------------------------------------------------------------------------
    # Building
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        model: SentenceEncoder | str | os.PathLike,
        ids: Iterable[Any] | None = None,
        show_progress_bar: bool | None = None,
        **options: Any,
    ) -> SemanticIndex:
        """Encode ``texts`` (a list, or a ``datasets`` column) with ``model`` into a new index
        (``show_progress_bar``: see :meth:`add`; ``options``: the constructor's)."""
        index = cls(model, **options)
        index.add(texts, ids, show_progress_bar=show_progress_bar)
        return index

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        model: SentenceEncoder | str | os.PathLike,
        text_column: str = "text",
        id_column: str | None = None,
        **options: Any,
    ) -> SemanticIndex:
        """Index one column of a ``datasets.Dataset`` (ids from ``id_column``, default: row numbers)."""
        for column in (text_column, id_column):
            if column is not None and column not in dataset.column_names:
                raise ValueError(f"dataset has no column {column!r}; its columns are {dataset.column_names}")
        return cls.build(dataset[text_column], model, dataset[id_column] if id_column else None, **options)

    def add(
        self,
        texts: Iterable[str],
        ids: Iterable[Any] | None = None,
        embeddings: np.ndarray | None = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        """Add documents.

        Args:
            texts: the documents (a list, any iterable of strings, or a ``datasets`` column).
            ids: one per text, unique across the index, JSON-serializable (str or int); default: the
                running position (0, 1, 2 ... across calls).
            embeddings: (len(texts), dim) precomputed embeddings of ``texts`` under this index's model;
                default: encode them.
            show_progress_bar: a bar counting the encoded texts and their rate; ``None`` shows it for
                long inputs on a terminal (the encoder's rule).
        """
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{position}] is {type(text).__name__}, expected str")
        ids = list(range(len(self.ids), len(self.ids) + len(texts))) if ids is None else list(ids)
        if len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts; pass one id per text")
        for doc_id in ids:
            if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
                raise TypeError(f"ids must be str or int, got {doc_id!r} ({type(doc_id).__name__})")
        duplicates = sorted({str(i) for i in ids if i in self._id_positions} | _repeated(ids))
        if duplicates:
            raise ValueError(f"duplicate ids {duplicates[:5]}{' ...' if len(duplicates) > 5 else ''}: ids must be unique")
        if embeddings is None:
            embeddings = (self._encode(texts, show_progress_bar) if texts
                          else np.zeros((0, self.dim), np.float32))
        else:
            embeddings = np.asarray(embeddings, dtype=np.float32)
            if embeddings.shape != (len(texts), self.dim):
                raise ValueError(
                    f"embeddings have shape {embeddings.shape}, expected ({len(texts)}, {self.dim}): "
                    "one row per text, the model's embedding dimension"
                )
            if self.similarity == "cosine":
                embeddings = l2_normalize(embeddings)
        for doc_id in ids:
            self._id_positions[doc_id] = len(self._id_positions)
        self.ids += ids
        self.texts += texts
        self._blocks.append(np.ascontiguousarray(embeddings))
        self._matrix = None

    # ------------------------------------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.model.embedding_dim

    @property
    def embeddings(self) -> np.ndarray:
        """(len(self), dim) float32 corpus embeddings (normalized when ``similarity="cosine"``)."""
        if len(self._blocks) != 1:
            self._blocks = [np.concatenate(self._blocks) if self._blocks else np.zeros((0, self.dim), np.float32)]
        return self._blocks[0]

    # ------------------------------------------------------------------------------------------------
    # Searching
    # ------------------------------------------------------------------------------------------------
    def search(self, queries: str | Sequence[str], top_k: int = 10) -> list[SearchResult] | list[list[SearchResult]]:
        """The ``top_k`` best documents for each query, best first.

        Returns:
            for one string, a list of :class:`SearchResult` ``(id, score, text)``; for a list of
            queries, one such list per query. Fewer than ``top_k`` when the index is smaller.
        """
        single = isinstance(queries, str)
        batch = [queries] if single else list(queries)
        scores, positions = self.search_embeddings(self._encode(batch), top_k)
        results = [
            [SearchResult(self.ids[p], float(s), self.texts[p]) for s, p in zip(row_s, row_p) if p >= 0]
            for row_s, row_p in zip(scores, positions)
        ]
        return results[0] if single else results

    def search_embeddings(self, queries: np.ndarray, top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Search with query embeddings (Q, dim): returns float32 scores and int64 positions, (Q, k).

        ``k = min(top_k, len(self))``; positions index :attr:`ids` / :attr:`texts`. Queries are
        normalized here when ``similarity="cosine"``.
        """
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k <= 0:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"query embeddings have shape {queries.shape}, expected (n, {self.dim})")
        if self.similarity == "cosine":
            queries = l2_normalize(queries)
        k = min(top_k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self.backend == "faiss":
            # faiss selects candidates; they are rescored as the exact search does (contrasent.search.topk), so
            # every backend returns the same scores and breaks ties the same way.
            _, candidates = self._faiss_index().search(np.ascontiguousarray(queries), candidate_count(k, len(self)))
            candidates = candidates.astype(np.int64)
            scores, positions = rank_candidates(rescore(queries, self.embeddings, candidates), candidates, k)
            return scores.astype(np.float32), positions
        return self._exact_search(queries, k)

    def _exact_search(
        self, queries: np.ndarray, k: int, query_chunk: int = 256, corpus_chunk: int = 32768
    ) -> tuple[np.ndarray, np.ndarray]:
        scores, positions = exact_top_k(
            queries, self.embeddings, k, dtype=self.dtype, query_chunk=query_chunk, corpus_chunk=corpus_chunk,
            selection_corpus=self._search_matrix(),
        )
        return scores.astype(np.float32), positions

    def _search_matrix(self) -> torch.Tensor:
        import torch

        if self._matrix is None or self._matrix.shape[0] != len(self):
            matrix = torch.from_numpy(self.embeddings)
            self._matrix = matrix.to(torch.bfloat16) if self.dtype == "bfloat16" else matrix
        return self._matrix

    def _faiss_index(self) -> Any:
        faiss = _import_faiss()
        if self._faiss is None and self.faiss_factory == "Flat":
            self._faiss = faiss.IndexFlatIP(self.dim)
        elif self._faiss is None:
            self._faiss = faiss.index_factory(self.dim, self.faiss_factory, faiss.METRIC_INNER_PRODUCT)
        if not self._faiss.is_trained:
            self._faiss.train(self.embeddings)
        if self._faiss.ntotal < len(self):
            self._faiss.add(self.embeddings[self._faiss.ntotal:])
        return self._faiss

    def _encode(self, texts: list[str], show_progress_bar: bool | None = False) -> np.ndarray:
        return np.asarray(self.model.encode(
            texts, batch_size=self.batch_size, normalize=True if self.similarity == "cosine" else None,
            show_progress_bar=show_progress_bar,
        ))

    # ------------------------------------------------------------------------------------------------
    # Saving and loading
    # ------------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write the index to ``directory`` atomically (a failure leaves a previous index intact); it replaces
        only an earlier index or an empty folder, else ``FileExistsError`` (``atomic_folder``'s rule)."""
        metadata = {
            "format": INDEX_FORMAT, "version": INDEX_VERSION, "model": self.model_name,
            "embedding_dim": self.dim, "count": len(self), "similarity": self.similarity,
            "backend": self.backend, "dtype": self.dtype, "faiss_factory": self.faiss_factory,
            "model_probe": model_probe(self.model),
        }
        with atomic_folder(directory, INDEX_FOLDER) as folder:
            np.save(folder / EMBEDDINGS_NAME, self.embeddings, allow_pickle=False)
            with open(folder / CORPUS_NAME, "w", encoding="utf-8") as file:
                file.writelines(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n"
                                for doc_id, text in zip(self.ids, self.texts))
            if self.backend == "faiss" and self._faiss is not None and self._faiss.ntotal == len(self):
                _import_faiss().write_index(self._faiss, str(folder / FAISS_NAME))
            (folder / METADATA_NAME).write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        model: SentenceEncoder | str | os.PathLike | None = None,
        **options: Any,
    ) -> SemanticIndex:
        """Read an index written by :meth:`save`.

        Args:
            directory: the folder.
            model: the model to search with; default: the one recorded at build time (``model_name``).
            **options: override the saved ``backend``, ``dtype``, ``faiss_factory``, ``batch_size``.

        Raises:
            FileNotFoundError: ``directory`` or one of its files is missing.
            ValueError: not an index folder, inconsistent files, or ``model`` is not the model the index
                was built with (other dimension, or other embeddings of the probe sentences).
        """
        folder = Path(directory)
        metadata_path = folder / METADATA_NAME
        if not metadata_path.is_file():
            raise FileNotFoundError(f"{metadata_path} not found: {folder} is not a saved SemanticIndex")
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{metadata_path}: not valid JSON ({error})") from error
        if metadata.get("format") != INDEX_FORMAT or metadata.get("version") != INDEX_VERSION:
            raise ValueError(f"{metadata_path}: expected format {INDEX_FORMAT!r} version {INDEX_VERSION}, got "
                             f"{metadata.get('format')!r} version {metadata.get('version')!r}")
        if model is None:
            if not metadata.get("model"):
                raise ValueError(f"{metadata_path} records no model name: pass model=... to load()")
            model = metadata["model"]
        settings = {key: metadata[key] for key in ("backend", "dtype", "faiss_factory")}
        index = cls(model, similarity=metadata["similarity"], **{**settings, **options},
                    model_name=metadata.get("model") if not isinstance(model, (str, os.PathLike)) else str(model))
        check_same_model(index.model, metadata, folder)

        embeddings = np.load(folder / EMBEDDINGS_NAME, allow_pickle=False)
        ids, texts = [], []
        with open(folder / CORPUS_NAME, encoding="utf-8") as file:
            for line in file:
                record = json.loads(line)
                ids.append(record["id"])
                texts.append(record["text"])
        expected = (metadata["count"], metadata["embedding_dim"])
        if embeddings.shape != expected or embeddings.dtype != np.float32 or len(ids) != expected[0]:
            raise ValueError(f"{folder}: {EMBEDDINGS_NAME} is {embeddings.dtype} {embeddings.shape} and "
                             f"{CORPUS_NAME} has {len(ids)} lines; {METADATA_NAME} says {expected[0]} float32 "
                             f"rows of dimension {expected[1]}")
        index.ids, index.texts, index._blocks = ids, texts, [embeddings]
        index._id_positions = {doc_id: position for position, doc_id in enumerate(ids)}
        if index.backend == "faiss" and (folder / FAISS_NAME).is_file() and index.faiss_factory == metadata["faiss_factory"]:
            stored = _import_faiss().read_index(str(folder / FAISS_NAME))
            if stored.ntotal == len(ids) and stored.d == index.dim:
                index._faiss = stored
        return index

    def __repr__(self) -> str:
        return (f"SemanticIndex(documents={len(self)}, dim={self.dim}, model={self.model_name!r}, "
                f"similarity={self.similarity!r}, backend={self.backend!r})")


def _repeated(ids: list[Any]) -> set[str]:
    seen: set[Any] = set()
    return {str(i) for i in ids if i in seen or seen.add(i)}


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "backend='faiss' needs the faiss package: pip install 'contrasent[faiss]' (faiss-cpu)"
        ) from error
    return faiss
