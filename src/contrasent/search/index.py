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

``quantization="int8"`` or ``"binary"`` keeps the corpus as int8 codes (a quarter of float32's bytes) or
sign bits (a 32nd) and rescores the candidates they select against the int8 rows with the float query
(:mod:`contrasent.search.quantization`, where the score is defined); a loaded binary index keeps only
its bits in memory, its int8 rows memory-mapped. :meth:`SemanticIndex.info` tells the bytes.

Saved folders hold no pickle (:mod:`contrasent.search.index_files`). Loading refuses a model of another
dimension, or one whose embeddings of a few fixed probe sentences differ from those recorded at build
time (:mod:`contrasent.search.model_probe`), and files that do not agree (edited or reordered since
saved, NaN rows, duplicate ids). Saving never replaces a file or a folder that is not an index. Ids,
texts and queries are checked where they enter (:mod:`.index_checks`, :mod:`.text_checks`): searching an
empty index, with no query or a blank one, is an error, not an arbitrary ranking.

Corpus files are read by :func:`contrasent.search.corpus.read_corpus`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from contrasent.hardware import warn_if_bfloat16_is_emulated
from contrasent.models.atomic_folder import atomic_folder
from contrasent.models.prompts import resolve_prompt, role_prompt
from contrasent.search import faiss_backend, index_files
from contrasent.search.index_checks import as_list, check_ids, first_non_finite_row
from contrasent.search.index_files import (
    BACKENDS,
    CORPUS_NAME,
    DTYPES,
    EMBEDDINGS_NAME,
    FAISS_NAME,
    INDEX_FOLDER,
    INDEX_FORMAT,
    INDEX_VERSION,
    METADATA_NAME,
    QUANTIZED_NAMES,
    SIMILARITIES,
)
from contrasent.search.model_probe import check_same_model, model_probe
from contrasent.search.quantization import QUANTIZATIONS, QuantizedCorpus
from contrasent.search.text_checks import check_positive_int, check_queries, check_text, short_repr
from contrasent.search.topk import candidate_count, exact_top_k, l2_normalize, rank_candidates, rescore

if TYPE_CHECKING:
    import torch

    from contrasent.models.encoder import SentenceEncoder

__all__ = ["BACKENDS", "CORPUS_NAME", "EMBEDDINGS_NAME", "FAISS_NAME", "INDEX_FOLDER", "INDEX_FORMAT",
           "INDEX_VERSION", "METADATA_NAME", "SIMILARITIES", "SearchResult", "SemanticIndex"]


_LOAD_OPTIONS = ("backend", "dtype", "faiss_factory", "batch_size", "query_prompt_name", "query_prompt",
                 "document_prompt_name", "document_prompt", "truncate_dim", "rescore_k")
# rows per block of a memory-mapped index's exact search (load(mmap=True)): 100 MB of 384-d float32
MMAP_BLOCK_ROWS = 65_536
# candidates rescored per result when rescore_k is not given (as the "binary + int8 rescoring" recipe)
RESCORE_MULTIPLIER = 4


def effective_prompt(model: Any, role: str, prompt: str | None, prompt_name: str | None) -> str:
    """The prompt ``model`` puts before the texts of ``role`` (``""`` for none): the one given, else the
    role's (:func:`~contrasent.models.prompts.role_prompt`), else the model's default prompt."""
    chosen = role_prompt(model, role, prompt, prompt_name)
    if chosen is None:
        config = model.config
        chosen = resolve_prompt(config.prompts, config.default_prompt_name, None, None)
    return chosen or ""


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
        query_prompt_name, document_prompt_name: the model's prompts that queries and documents get;
            default: its ``"query"`` prompt for queries, its first of ``"document"``, ``"passage"``,
            ``"corpus"`` for documents (as sentence-transformers' ``encode_query`` / ``encode_document``),
            else its default prompt, else none (:func:`contrasent.models.prompts.role_prompt`).
        query_prompt, document_prompt: prompt strings instead of names (``""``: no prompt).
        truncate_dim: keep the first ``truncate_dim`` dimensions of every embedding (a Matryoshka model);
            default: the model's ``truncate_dim``, else all.
        quantization: ``None`` (float32 rows), ``"int8"`` or ``"binary"``
            (:mod:`contrasent.search.quantization`): the ranges are calibrated on the first documents
            added; later :meth:`add` calls reuse them (values outside are clipped). ``dtype`` applies to
            the int8 candidate products; ``backend`` must be ``"exact"``.
        rescore_k: candidates rescored per query by a quantized index (at least ``top_k``); default
            ``4 * top_k``.

    A saved index records the document prompt and ``truncate_dim`` it was built with; :meth:`load`
    refuses a model or options that would embed documents otherwise.

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
        query_prompt_name: str | None = None,
        document_prompt_name: str | None = None,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        truncate_dim: int | None = None,
        quantization: str | None = None,
        rescore_k: int | None = None,
    ) -> None:
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        batch_size = check_positive_int(batch_size, "batch_size")
        if quantization is not None and quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be None or one of {QUANTIZATIONS}, got {quantization!r}")
        if quantization is not None and backend != "exact":
            raise ValueError(f"quantization={quantization!r} needs backend='exact', got backend={backend!r}: a "
                             "binary index uses faiss's Hamming search by itself when faiss is installed")
        if rescore_k is not None:
            if quantization is None:
                raise ValueError(f"rescore_k={rescore_k!r} is for a quantized index; pass quantization='int8' "
                                 "or 'binary', or no rescore_k")
            rescore_k = check_positive_int(rescore_k, "rescore_k")
        if dtype == "bfloat16":
            warn_if_bfloat16_is_emulated("SemanticIndex(dtype='bfloat16')")
        if isinstance(model, (str, os.PathLike)):
            from contrasent.models.encoder import SentenceEncoder

            model_name = model_name or str(model)
            model = SentenceEncoder.from_pretrained(model)
        if truncate_dim is not None:
            from contrasent.models.encoder import check_truncate_dim

            check_truncate_dim(truncate_dim, model.full_dim)
        self.model = model
        self.truncate_dim = truncate_dim
        self.query_prompt = effective_prompt(model, "query", query_prompt, query_prompt_name)
        self.document_prompt = effective_prompt(model, "document", document_prompt, document_prompt_name)
        self.model_name = model_name
        self.similarity = similarity
        self.backend = backend
        self.dtype = dtype
        self.faiss_factory = faiss_factory
        self.batch_size = batch_size
        self.quantization = quantization
        self.rescore_k = rescore_k
        self.ids: list[Any] = []
        self.texts: list[str] = []
        self._id_positions: dict[Any, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix: torch.Tensor | None = None  # the blocks joined, in the search dtype
        self._faiss: Any = None
        self._quantized = QuantizedCorpus(quantization, self.dim) if quantization else None
        self._folder: Path | None = None  # where it was last saved or loaded from (info's bytes on disk)
        # from_shards / load(mmap=True): the memory-mapped rows, searched block by block
        # (contrasent.search.shard_index.ShardCorpus / contrasent.search.blockwise.MatrixBlocks)
        self._shards: Any = None

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

    @classmethod
    def from_shards(
        cls,
        directory: str | os.PathLike,
        model: SentenceEncoder | str | os.PathLike | None = None,
        *,
        corpus: str | os.PathLike | None = None,
        block_size: int | None = None,
        **options: Any,
    ) -> SemanticIndex:
        """Search a folder of shards written by :func:`~contrasent.search.corpus_shards.encode_corpus`
        (``contrasent encode``) without loading its embeddings into memory.

        The exact search reads the memory-mapped shards ``block_size`` rows at a time (default: a shard at
        a time) and keeps each query's running top-k (:func:`contrasent.search.blockwise.blockwise_top_k`),
        so memory is the ids, one block of float32 rows and the results, whatever the corpus size; the
        results equal an in-memory index's. ``backend="faiss"`` builds its index block by block (trained on
        a sample of at most 65,536 rows spread over the shards); ``quantization="int8"`` / ``"binary"``
        calibrates its ranges on the same sample and quantizes block by block. Their candidates are
        rescored as an in-memory index's are (faiss: with float32 rows read from the shards).

        Args:
            directory: the shards' folder (its encoding complete).
            model: default: the manifest's ``model``. It must be the model that wrote the shards (its probe
                sentences); documents keep the manifest's prompt and ``truncate_dim``.
            corpus: the corpus file the shards were encoded from, for the results' texts (its SHA-256 and
                ids must be the manifest's); without it each result's ``text`` is ``None``.
            block_size: rows per block of the exact search (None: one shard).
            **options: the constructor's ``similarity``, ``backend``, ``faiss_factory``, ``batch_size``,
                ``query_prompt_name`` / ``query_prompt``, ``quantization``, ``rescore_k``.

        The index cannot be extended (:meth:`add`) or saved: the shards are its storage.

        Raises:
            FileNotFoundError: no manifest or a shard file missing. ValueError: an incomplete encoding,
                another model than the shards', a corpus file other than the encoded one (named, with the
                difference), an option that would change the documents' embeddings.
        """
        from contrasent.search.shard_index import open_shard_corpus

        refused = sorted(set(options) & {"document_prompt", "document_prompt_name", "truncate_dim", "dtype"})
        if refused:
            raise TypeError(f"from_shards() takes the documents' prompt and truncate_dim from the manifest and "
                            f"searches in float32; do not pass {refused}")
        folder = Path(directory)
        # rows the model already normalised are searched as they are (as an in-memory index keeps them)
        shards, ids, texts = open_shard_corpus(folder, corpus, block_size,
                                               normalize=options.get("similarity", "cosine") == "cosine")
        shards.normalize = shards.normalize and not shards.manifest["normalize"]
        manifest = shards.manifest
        if model is None:
            if not manifest["model"]:
                raise ValueError(f"{folder / 'manifest.json'} records no model name: pass model=... to from_shards()")
            model = manifest["model"]
        index = cls(model, truncate_dim=manifest["truncate_dim"], document_prompt=manifest["prompt"],
                    model_name=manifest["model"] if not isinstance(model, (str, os.PathLike)) else str(model),
                    **options)
        check_same_model(index.model, manifest, folder, index.truncate_dim)
        index.ids, index.texts = ids, texts
        index._id_positions = {doc_id: position for position, doc_id in enumerate(ids)}
        index._shards = shards
        if index._quantized is not None:
            index._quantized = QuantizedCorpus.from_blocks(index.quantization, index.dim, shards.training_sample(),
                                                           (rows for _, rows in shards.blocks()))
        elif index.backend == "faiss":
            index._faiss = faiss_backend.from_blocks(index.faiss_factory, shards.training_sample(),
                                                     (rows for _, rows in shards.blocks()))
        return index

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
        self._check_not_shards("add() to")
        texts = [check_text(text, f"texts[{position}]", blank_ok=True)
                 for position, text in enumerate(as_list(texts, "texts"))]
        ids = list(range(len(self.ids), len(self.ids) + len(texts))) if ids is None else as_list(ids, "ids")
        if len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts; pass one id per text")
        check_ids(ids, self._id_positions, "SemanticIndex.add", lambda position: f"ids[{position}]")
        embeddings = self._checked_embeddings(texts, embeddings, show_progress_bar)
        for doc_id in ids:
            self._id_positions[doc_id] = len(self._id_positions)
        self.ids += ids
        self.texts += texts
        if self._quantized is not None:
            self._quantized.add(embeddings)
        else:
            self._blocks.append(np.ascontiguousarray(embeddings))
        self._matrix = None

    def _checked_embeddings(
        self, texts: list[str], embeddings: np.ndarray | None, show_progress_bar: bool | None
    ) -> np.ndarray:
        """The rows to add for ``texts``: ``embeddings`` (checked, normalized for cosine) or encoded ones;
        a NaN or infinite row is refused, since it would rank first or never for every query."""
        precomputed = embeddings is not None
        if precomputed:
            embeddings = np.asarray(embeddings, dtype=np.float32)
            if embeddings.shape != (len(texts), self.dim):
                raise ValueError(f"embeddings have shape {embeddings.shape}, expected ({len(texts)}, {self.dim}): "
                                 "one row per text, the model's embedding dimension")
        else:
            embeddings = (self._encode(texts, show_progress_bar, prompt=self.document_prompt) if texts
                          else np.zeros((0, self.dim), np.float32))
        bad_row = first_non_finite_row(embeddings)
        if bad_row is not None:
            text = short_repr(texts[bad_row])
            where = (f"embeddings[{bad_row}] (for texts[{bad_row}], {text}) holds" if precomputed
                     else f"the model embedded texts[{bad_row}] ({text}) as")
            raise ValueError(f"{where} NaN or infinite values; nothing was added")
        # encoded rows come normalized from the model already
        return l2_normalize(embeddings) if precomputed and self.similarity == "cosine" else embeddings

    # ------------------------------------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.truncate_dim or self.model.embedding_dim

    @property
    def embeddings(self) -> np.ndarray:
        """(len(self), dim) float32 corpus embeddings (normalized when ``similarity="cosine"``).

        Raises:
            ValueError: a quantized index, which keeps no float32 rows.
        """
        if self._quantized is not None:
            raise ValueError(f"a quantization={self.quantization!r} index keeps no float32 embeddings, only "
                             "their codes (see info())")
        self._check_not_shards("hold in memory the embeddings of")
        if len(self._blocks) != 1:
            self._blocks = [np.concatenate(self._blocks) if self._blocks else np.zeros((0, self.dim), np.float32)]
        return self._blocks[0]

    def info(self) -> dict[str, Any]:
        """What the index holds and costs: ``documents``, ``dim``, ``quantization`` (``None``: float32),
        ``bytes_in_memory`` (the arrays searched, held in RAM: float32 rows, or codes and ranges; not a
        memory-mapped int8 file, a faiss or bfloat16 copy, ids or texts) and ``bytes_on_disk`` (the files
        of the folder it was last saved to or loaded from, ``None`` if neither)."""
        if self._quantized is not None:
            in_memory = self._quantized.bytes_in_memory()
        elif self._shards is not None:
            in_memory = 0  # memory-mapped shards, read a block at a time
        else:
            in_memory = self.embeddings.nbytes
        on_disk = None
        if self._folder is not None:
            on_disk = sum(entry.stat().st_size for entry in self._folder.iterdir()
                          if INDEX_FOLDER.is_artifact(entry.name) and entry.is_file())
        return {"documents": len(self), "dim": self.dim, "quantization": self.quantization,
                "bytes_in_memory": in_memory, "bytes_on_disk": on_disk}

    # ------------------------------------------------------------------------------------------------
    # Searching
    # ------------------------------------------------------------------------------------------------
    def search(self, queries: str | Sequence[str], top_k: int = 10) -> list[SearchResult] | list[list[SearchResult]]:
        """The ``top_k`` best documents for each query, best first.

        Returns:
            for one string, a list of :class:`SearchResult` ``(id, score, text)``; for a list of
            queries, one such list per query. Fewer than ``top_k`` when the index is smaller.

        Raises:
            TypeError: ``queries`` is not a string or a list of strings (``None``, ``bytes`` ...).
            ValueError: no query (``[]``), a query of whitespace only or not valid Unicode (named by its
                index), ``top_k`` not a positive integer, or an empty index: each checked before encoding.
        """
        batch, single = check_queries(queries)
        top_k = check_positive_int(top_k, "top_k")
        self._check_not_empty()
        scores, positions = self.search_embeddings(self._encode(batch, prompt=self.query_prompt), top_k)
        results = [
            [SearchResult(self.ids[p], float(s), self.texts[p]) for s, p in zip(row_s, row_p) if p >= 0]
            for row_s, row_p in zip(scores, positions)
        ]
        return results[0] if single else results

    def search_embeddings(self, queries: np.ndarray, top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Search with query embeddings (Q, dim): returns float32 scores and int64 positions, (Q, k).

        ``k = min(top_k, len(self))``; positions index :attr:`ids` / :attr:`texts`. Queries are
        normalized here when ``similarity="cosine"``.

        Raises:
            ValueError: ``top_k`` not a positive integer, queries of another shape or holding NaN or
                infinite values (their scores would be NaN), or an empty index.
        """
        k = min(check_positive_int(top_k, "top_k"), len(self))
        self._check_not_empty()
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"query embeddings have shape {queries.shape}, expected (n, {self.dim})")
        bad_row = first_non_finite_row(queries)
        if bad_row is not None:
            raise ValueError(f"query embedding {bad_row} holds NaN or infinite values: its scores would be NaN")
        if self.similarity == "cosine":
            queries = l2_normalize(queries)
        if self._quantized is not None:
            rescore_k = self.rescore_k or RESCORE_MULTIPLIER * k
            scores, positions = self._quantized.search(queries, k, rescore_k, dtype=self.dtype)
            return scores.astype(np.float32), positions
        if self.backend == "faiss":
            # faiss selects candidates; they are rescored as the exact search does (contrasent.search.topk), so
            # every backend returns the same scores and breaks ties the same way.
            _, candidates = self._faiss_index().search(np.ascontiguousarray(queries), candidate_count(k, len(self)))
            candidates = candidates.astype(np.int64)
            rows = self._shards if self._shards is not None else self.embeddings
            scores, positions = rank_candidates(rescore(queries, rows, candidates), candidates, k)
            return scores.astype(np.float32), positions
        if self._shards is not None:
            from contrasent.search.blockwise import blockwise_top_k

            scores, positions, _ = blockwise_top_k(queries, self._shards, k)
            return scores.astype(np.float32), positions
        return self._exact_search(queries, k)

    def _check_not_shards(self, action: str) -> None:
        if self._shards is not None:
            raise ValueError(f"cannot {action} a memory-mapped index (from_shards, load(mmap=True)): its rows "
                             "stay on disk, searched block by block; build a new index to change them")

    def _check_not_empty(self) -> None:
        if len(self) == 0:
            raise ValueError("the index holds no documents: add() some before searching")

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
        if self._shards is not None:
            return self._faiss  # built from the shards by from_shards
        self._faiss = faiss_backend.up_to_date(self._faiss, self.faiss_factory, self.embeddings)
        return self._faiss

    def _encode(self, texts: list[str], show_progress_bar: bool | None = False, *, prompt: str) -> np.ndarray:
        return np.asarray(self.model.encode(
            texts, batch_size=self.batch_size, normalize=True if self.similarity == "cosine" else None,
            show_progress_bar=show_progress_bar, prompt=prompt, truncate_dim=self.truncate_dim,
        ))

    # ------------------------------------------------------------------------------------------------
    # Saving and loading
    # ------------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write the index to ``directory`` (atomically: a failure leaves a previous index intact).

        Raises:
            FileExistsError: ``directory`` is a file, or a folder holding other things and no index: it is
                never replaced (:func:`contrasent.search.index_files.check_save_target`).
            OSError: ``directory`` cannot be written (found before anything is written), or writing failed
                (a full disk): the previous index, if any, is left as it was.
        """
        self._check_not_shards("save()")
        if self._quantized is not None and len(self) == 0:
            raise ValueError(f"a quantization={self.quantization!r} index is calibrated on its documents: add() "
                             "some before saving it")
        index_files.check_save_target(directory)
        metadata = {
            "model": self.model_name, "embedding_dim": self.dim, "count": len(self), "similarity": self.similarity,
            "backend": self.backend, "dtype": self.dtype, "faiss_factory": self.faiss_factory,
            "model_probe": model_probe(self.model, self.truncate_dim), "truncate_dim": self.truncate_dim,
            "document_prompt": self.document_prompt, "query_prompt": self.query_prompt,
            "quantization": self.quantization, "rescore_k": self.rescore_k,
        }
        if self._quantized is not None:
            arrays = {QUANTIZED_NAMES[key]: array for key, array in self._quantized.arrays().items()}
        else:
            arrays = {EMBEDDINGS_NAME: self.embeddings}
        write_faiss = None
        if self.backend == "faiss" and self._faiss is not None and self._faiss.ntotal == len(self):
            write_faiss = partial(faiss_backend.write_faiss, self._faiss)
        try:
            with atomic_folder(directory, INDEX_FOLDER) as folder:
                index_files.write_index(folder, metadata, self.ids, self.texts, arrays, write_faiss)
        except OSError as error:  # a full disk says neither which index nor where
            raise OSError(error.errno, f"cannot save the index to {directory}: {error.strerror or error}") from error
        self._folder = Path(directory)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        model: SentenceEncoder | str | os.PathLike | None = None,
        *,
        mmap: bool = False,
        **options: Any,
    ) -> SemanticIndex:
        """Read an index written by :meth:`save`, refusing one whose files do not agree.

        Args:
            directory: the folder.
            model: the model to search with; default: the one recorded at build time (``model_name``).
            mmap: keep a float32 index's embeddings on disk, memory-mapped, and search them
                :data:`MMAP_BLOCK_ROWS` rows at a time with a running top-k (the results of ``mmap=False``).
                Such an index is read-only (no :meth:`add`, :meth:`save`); not for a quantized index or
                ``backend="faiss"``.
            **options: override the saved ``backend``, ``dtype``, ``faiss_factory``, ``batch_size``,
                ``rescore_k`` (the quantization is the saved one); choose
                the queries' prompt (``query_prompt_name``, ``query_prompt``; default: the model's, as in
                the constructor). The documents' prompt (the model's, or ``document_prompt_name``,
                ``document_prompt``) and ``truncate_dim`` (default: the saved one) must be those the
                index was built with.

        Raises:
            FileNotFoundError: ``directory`` or one of its files is missing.
            ValueError: not an index folder; files that do not agree (a checksum that differs: edited or
                reordered since saved; counts, NaN rows, duplicate ids; a quantized index's arrays of
                another dtype or shape; each file named, see :mod:`contrasent.search.index_files`); or ``model`` is not the model the index was built
                with (other dimension, or other embeddings of the probe sentences), or would give its
                documents another prompt than the one they were embedded with.
        """
        unknown = sorted(set(options) - set(_LOAD_OPTIONS))
        if unknown:
            raise TypeError(f"load() takes {', '.join(_LOAD_OPTIONS)} as options, not {unknown}")
        folder = Path(directory)
        metadata = index_files.read_metadata(folder)
        quantization = metadata.get("quantization") if metadata["version"] >= 3 else None
        backend = options.get("backend", metadata["backend"])
        if mmap and (quantization or backend != "exact"):
            raise ValueError(f"load(mmap=True) searches float32 rows exactly; the index in {folder} has "
                             f"quantization={quantization!r}, backend={backend!r}")
        # the files first: before the model. A binary index searches its bits; its int8 rows stay on disk.
        if quantization:
            ids, texts, arrays = index_files.read_quantized_rows(
                folder, metadata, memory_mapped=("int8",) if quantization == "binary" else ())
        else:
            ids, texts, embeddings = index_files.read_rows(folder, metadata, mmap=mmap)
        if model is None:
            if not metadata["model"]:
                raise ValueError(f"{folder / METADATA_NAME} records no model name: pass model=... to load()")
            model = metadata["model"]
        settings = {key: metadata[key] for key in ("backend", "dtype", "faiss_factory")}
        # indexes saved before prompts existed (version 2) hold rows embedded without one, not truncated
        recorded_prompt = metadata.get("document_prompt") or ""
        settings["truncate_dim"] = metadata.get("truncate_dim")
        if quantization:
            settings.update(quantization=quantization, rescore_k=metadata["rescore_k"])
        index = cls(model, similarity=metadata["similarity"], **{**settings, **options},
                    model_name=metadata["model"] if not isinstance(model, (str, os.PathLike)) else str(model))
        check_same_model(index.model, metadata, folder, index.truncate_dim)
        if index.document_prompt != recorded_prompt:
            raise ValueError(f"the index in {folder} was built with the document prompt {recorded_prompt!r}, but "
                             f"this load would embed documents with {index.document_prompt!r}; load it with "
                             "the prompt it was built with, or rebuild the index")
        if metadata["version"] < 2:
            index_files.check_rows_match_texts(index.model, texts, embeddings, folder)
        if quantization:
            index._quantized = QuantizedCorpus(quantization, index.dim, arrays)
        elif mmap:
            from contrasent.search.blockwise import MatrixBlocks

            index._shards = MatrixBlocks(embeddings, MMAP_BLOCK_ROWS)
        else:
            index._blocks = [embeddings]
            index._faiss = index._stored_faiss(folder, metadata)
        index.ids, index.texts = ids, texts
        index._id_positions = {doc_id: position for position, doc_id in enumerate(ids)}
        index._folder = folder
        return index

    def _stored_faiss(self, folder: Path, metadata: dict[str, Any]) -> Any:
        """The saved faiss index when it fits this index's settings (else ``None``: rebuilt when needed)."""
        path = folder / FAISS_NAME
        if self.backend != "faiss" or not path.is_file() or self.faiss_factory != metadata["faiss_factory"]:
            return None
        index_files.check_faiss_file(folder, metadata)
        return faiss_backend.read_faiss(path, len(self), self.dim)

    def __repr__(self) -> str:
        return (f"SemanticIndex(documents={len(self)}, dim={self.dim}, model={self.model_name!r}, "
                f"similarity={self.similarity!r}, backend={self.backend!r}, quantization={self.quantization!r})")
