"""Offline hard-negative mining: add ``negative_1 … negative_k`` columns to an (anchor, positive) dataset.

For every row the corpus is ranked by cosine similarity to the anchor. Rank 0 is the most similar
corpus text **after removing** the anchor's labelled positives (every positive of that anchor text in
the dataset: an anchor may have several rows) and the anchor text itself. A corpus text at rank r with
score s qualifies for a row whose positive scores :math:`s^+` when

- ``min_rank ≤ r < max_rank`` (``range``; skipping the top ranks avoids unlabelled positives), and
- ``s ≤ s⁺ − margin`` (if ``margin`` is given) and ``s ≤ s⁺ · (1 − relative_margin)`` (if
  ``relative_margin`` is given): NV-Retriever's TopK-MarginPos / TopK-PercPos false-negative filters.

``sampling="top"`` takes the k best-ranked qualifying texts, ``"random"`` k of them at random (seeded).
Rows with fewer than k qualifying texts in the range are **filled** from further down the ranking
(ranks ≥ max_rank, best first, the margin rules still applying); if even the whole corpus has too few,
the row is kept with ``None`` in its missing ``negative_j`` columns (counted as *short*): nothing is
dropped. :class:`~contrasent.ContrastiveTrainer` trains such a row with the negatives it has, plus the
in-batch negatives: the missing ones are not encoded and are masked out of the loss (InfoNCE; a loss
that cannot mask them is refused, naming the column). To train only on full rows instead, widen the
range or margins, or filter the short rows out
(``dataset.filter(lambda row: row["negative_k"] is not None)``).

``output_format="n-tuple"`` (default) adds the columns ``negative_1 … negative_k`` to each row;
``"triplet"`` (sentence-transformers' default) writes one ``(…, negative)`` row per mined negative
instead, the row's other columns repeated: k times as many rows, so one epoch makes k passes over the
pairs, each with a different negative. A row with no negative at all is kept once, with ``None``.

Embeddings are computed once (unique anchors, deduplicated corpus) and, with ``cache_dir``, stored as
``.npy`` files keyed by a hash of the model identity and the texts (:mod:`contrasent.search.embedding_cache`). Search is exact: chunked matrix
products with bounded memory, or faiss's exact inner-product index with ``use_faiss=True``; either way
the candidates are rescored by :func:`contrasent.search.topk.rescore`, so the mined negatives do not depend on
the backend, the chunking or the CPU (see :mod:`contrasent.search.topk`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from contrasent.data.columns import ColumnLayout
from contrasent.data.validation import validate_training_data
from contrasent.search.embedding_cache import encode_cached, model_identity
from contrasent.search.index_checks import first_non_finite_row
from contrasent.search.mining_stats import MiningStats
from contrasent.search.text_checks import short_repr
from contrasent.search.topk import candidate_count, exact_top_k, l2_normalize, rank_candidates, rescore

if TYPE_CHECKING:
    from datasets import Dataset

SAMPLING = ("top", "random")
OUTPUT_FORMATS = ("n-tuple", "triplet")


def mine_hard_negatives(
    dataset: Dataset,
    model: Any,
    corpus: Sequence[str] | None = None,
    *,
    anchor_column: str | None = None,
    positive_column: str | None = None,
    num_negatives: int = 3,
    range: tuple[int, int | None] = (0, 100),  # shadows the builtin here only: the name users know
    margin: float | None = None,
    relative_margin: float | None = None,
    sampling: str = "top",
    output_format: str = "n-tuple",
    batch_size: int = 32,
    use_faiss: bool = False,
    cache_dir: str | os.PathLike | None = None,
    model_id: str | None = None,
    seed: int = 0,
    verbose: bool = True,
    return_stats: bool = False,
    source: str = "dataset",
) -> Dataset | tuple[Dataset, MiningStats]:
    """Mine ``num_negatives`` hard negatives per row; see the module docstring for the rules.

    Args:
        dataset: a ``datasets.Dataset`` with an anchor and a positive text column.
        model: anything with ``encode(list[str]) -> np.ndarray`` (N, d), e.g. a
            :class:`~contrasent.SentenceEncoder` or a sentence-transformers model.
        corpus: texts to mine from (default: the dataset's distinct positives); duplicates are merged.
        anchor_column, positive_column: default the dataset's first and second columns.
        num_negatives: k ≥ 1 columns ``negative_1 … negative_k`` are added.
        range: ``(min_rank, max_rank)``, half-open; ``max_rank=None`` means the whole corpus.
        margin: absolute margin m ≥ 0 (``s ≤ s⁺ − m``), or None.
        relative_margin: r in [0, 1) (``s ≤ s⁺ (1 − r)``), or None.
        sampling: ``"top"`` or ``"random"`` (within the qualifying texts of the range).
        output_format: ``"n-tuple"`` (columns ``negative_1 … negative_k``) or ``"triplet"`` (a
            ``negative`` column, one row per mined negative; see the module docstring).
        batch_size: passed to ``model.encode`` when it accepts it.
        use_faiss: search with faiss (``faiss-cpu``/``faiss-gpu``) instead of numpy; both are exact.
        cache_dir: store / reuse embeddings there (``.npy``). The key is the model identity (class,
            name or path, configuration) and the texts, not the weights: pass ``model_id`` (or clear the
            cache) when the weights change under the same name.
        model_id: overrides the model identity in the cache key.
        seed: for ``sampling="random"``.
        verbose: print the statistics.
        return_stats: also return the :class:`MiningStats`.
        source: names the dataset in error messages (``contrasent mine`` passes the file).

    Raises:
        ValueError / TypeError: bad arguments, or an anchor or positive that is missing (``None``), not a
            string or blank, named by ``source``, row and column (:func:`check_mining_data`); all before
            anything is encoded.

    Returns:
        The dataset with ``negative_1 … negative_k`` added (same rows, same order), or for ``"triplet"``
        each row once per negative with ``negative`` added; and the stats if ``return_stats``.
    """
    rules = _check_arguments(num_negatives, range, margin, relative_margin, sampling, output_format, batch_size)
    columns = check_mining_data(dataset, anchor_column, positive_column, source)
    texts = _gather_texts(dataset, corpus, *columns)
    query_emb, corpus_emb = _embed(model, texts, batch_size, cache_dir, model_id or model_identity(model))
    search = _FaissSearch(corpus_emb) if use_faiss else _ExactSearch(corpus_emb)
    positive_scores = rescore(  # scored exactly as the search scores the candidates
        query_emb[[texts.query_row[a] for a in texts.anchors]], corpus_emb,
        np.array([texts.corpus_row[p] for p in texts.positives], dtype=np.int64).reshape(-1, 1),
    )[:, 0]
    negatives, negative_scores, rows_filled = _select_negatives(
        search, query_emb, texts, _excluded(texts), positive_scores, rules, np.random.default_rng(seed))
    stats = MiningStats.collect(negatives, positive_scores, negative_scores, rows_filled, num_negatives)
    if verbose:
        print(stats)
    result = _with_negatives(dataset, negatives, num_negatives, output_format)
    return (result, stats) if return_stats else result


def check_mining_data(
    dataset: Dataset, anchor_column: str | None = None, positive_column: str | None = None, source: str = "dataset",
) -> tuple[str, str]:
    """The anchor and positive columns of ``dataset`` (default: its first two), once every row holds a
    non-blank string in both: a ``None`` positive cannot be scored, so the margin rules cannot apply.

    Raises:
        ValueError: no rows, or a column that is not there (the columns listed), or a blank text.
        TypeError: a value that is not a string; ``source``, the row and the column are named, as the
            trainer names them (:func:`contrasent.data.validation.validate_training_data`).
    """
    columns = _text_columns(dataset, anchor_column, positive_column, source)
    validate_training_data(dataset, ColumnLayout("pairs", columns), source)
    return columns


@dataclass(frozen=True)
class _Rules:
    """Which ranks and scores qualify as a row's negatives (see the module docstring)."""

    k: int
    min_rank: int
    max_rank: int | None
    margin: float | None
    relative_margin: float | None
    sampling: str


@dataclass(frozen=True)
class _Texts:
    """The texts of one run: each row's anchor and positive, the distinct anchors (``queries``, one
    embedding each) and the distinct ``corpus`` texts, with their positions."""

    anchors: list[str]
    positives: list[str]
    queries: list[str]
    query_row: dict[str, int]
    corpus: list[str]
    corpus_row: dict[str, int]


def _gather_texts(dataset: Dataset, corpus: Sequence[str] | None, anchor_column: str, positive_column: str) -> _Texts:
    anchors = _column(dataset, anchor_column)
    positives = _column(dataset, positive_column)
    corpus_texts = list(dict.fromkeys(positives if corpus is None else corpus))
    for index, text in enumerate(corpus_texts):
        if not isinstance(text, str):
            raise TypeError(f"corpus[{index}] must be a str, got {type(text).__name__}")
    corpus_row = {text: i for i, text in enumerate(corpus_texts)}
    missing = [text for text in positives if text not in corpus_row]
    if missing:
        raise ValueError(
            f"{len(missing)} positives are not in corpus (e.g. {missing[0][:80]!r}); the positive's score "
            "is needed for the margin rules, add the positives to the corpus"
        )
    queries = list(dict.fromkeys(anchors))
    return _Texts(anchors, positives, queries, {text: i for i, text in enumerate(queries)}, corpus_texts, corpus_row)


def _embed(
    model: Any, texts: _Texts, batch_size: int, cache_dir: str | os.PathLike | None, identity: str
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalized embeddings of the distinct anchors and of the corpus (through the cache); a NaN or
    infinite embedding is refused, naming its text: it would rank first or never for every anchor."""
    embedded = []
    for kind, batch in (("anchor", texts.queries), ("corpus text", texts.corpus)):
        embeddings = encode_cached(model, batch, batch_size, cache_dir, identity)
        bad_row = first_non_finite_row(embeddings)
        if bad_row is not None:
            raise ValueError(f"the model embedded the {kind} {short_repr(batch[bad_row])} as NaN or infinite "
                             "values; nothing can be mined against it")
        embedded.append(l2_normalize(embeddings))
    query_emb, corpus_emb = embedded
    if query_emb.shape[1] != corpus_emb.shape[1]:
        raise ValueError(f"model.encode returned dimensions {query_emb.shape[1]} and {corpus_emb.shape[1]}")
    return query_emb, corpus_emb


def _excluded(texts: _Texts) -> dict[int, set[int]]:
    """Query row -> corpus positions never mined for it: the anchor's labelled positives (over all its
    rows) and the anchor text itself."""
    excluded: dict[int, set[int]] = {}
    for anchor, positive in zip(texts.anchors, texts.positives):
        excluded.setdefault(texts.query_row[anchor], set()).add(texts.corpus_row[positive])
    for anchor, row in texts.query_row.items():
        if anchor in texts.corpus_row:
            excluded[row].add(texts.corpus_row[anchor])
    return excluded


def _select_negatives(
    search: _ExactSearch | _FaissSearch,
    query_emb: np.ndarray,
    texts: _Texts,
    excluded: dict[int, set[int]],
    positive_scores: np.ndarray,
    rules: _Rules,
    rng: np.random.Generator,
) -> tuple[list[list[str | None]], list[float], int]:
    """Each row's k negative texts (``None``-padded), the scores of all of them, and how many rows were
    filled from beyond max_rank.

    One search ranks every query deep enough for the range after its exclusions; a row that finds fewer
    than k qualifying texts there searches again twice as deep, until it has k or has seen the corpus.
    """
    corpus_size = len(texts.corpus)
    rules = replace(rules, max_rank=corpus_size if rules.max_rank is None else min(rules.max_rank, corpus_size))
    depth = min(corpus_size, rules.max_rank + max(len(e) for e in excluded.values()))
    top_scores, top_ids = search(query_emb, depth)
    negatives: list[list[str | None]] = []
    negative_scores: list[float] = []
    rows_filled = 0
    for anchor, positive_score in zip(texts.anchors, positive_scores):
        row = texts.query_row[anchor]
        scores, ids = top_scores[row], top_ids[row]
        while True:
            chosen, chosen_scores, filled = _select(
                scores, ids, excluded[row], float(positive_score), rules, rng)
            if len(chosen) == rules.k or len(ids) == corpus_size:
                break
            deeper = search(query_emb[row : row + 1], min(corpus_size, 2 * len(ids)))
            scores, ids = deeper[0][0], deeper[1][0]
        rows_filled += filled
        negatives.append([texts.corpus[i] for i in chosen] + [None] * (rules.k - len(chosen)))
        negative_scores.extend(chosen_scores)
    return negatives, negative_scores, rows_filled


def _select(
    scores: np.ndarray,
    ids: np.ndarray,
    excluded: set[int],
    positive_score: float,
    rules: _Rules,
    rng: np.random.Generator,
) -> tuple[list[int], list[float], bool]:
    """Corpus ids and scores of one row's negatives from its ranking (``ids`` best first, ``rules.max_rank``
    an int), and whether any came from beyond ``max_rank``."""
    keep = ~np.isin(ids, list(excluded))
    scores, ids = scores[keep], ids[keep]  # position in these arrays = rank
    qualifies = np.ones(len(ids), dtype=bool)
    if rules.margin is not None:
        qualifies &= scores <= positive_score - rules.margin
    if rules.relative_margin is not None:
        qualifies &= scores <= positive_score * (1 - rules.relative_margin)
    in_range = np.flatnonzero(qualifies[rules.min_rank:rules.max_rank]) + rules.min_rank
    if rules.sampling == "random" and len(in_range) > rules.k:
        in_range = np.sort(rng.choice(in_range, size=rules.k, replace=False))
    chosen = in_range[:rules.k].tolist()
    filled = False
    if len(chosen) < rules.k:
        beyond = (np.flatnonzero(qualifies[rules.max_rank:]) + rules.max_rank)[: rules.k - len(chosen)]
        filled = len(beyond) > 0
        chosen += beyond.tolist()
    return [int(ids[rank]) for rank in chosen], [float(scores[rank]) for rank in chosen], filled


def _with_negatives(dataset: Dataset, negatives: list[list[str | None]], k: int, output_format: str) -> Dataset:
    """``negative_1 … negative_k`` columns (``"n-tuple"``), or one row per found negative with a
    ``negative`` column, a row without any kept once with ``None`` (``"triplet"``)."""
    if output_format == "triplet":
        found = [[text for text in row if text is not None] or [None] for row in negatives]
        result = dataset.select([i for i, row in enumerate(found) for _ in row])
        return result.add_column("negative", [text for row in found for text in row])
    for j in range(k):
        dataset = dataset.add_column(f"negative_{j + 1}", [row[j] for row in negatives])
    return dataset


class _ExactSearch:
    """Top-k inner-product search by chunked matrix products (:func:`contrasent.search.topk.exact_top_k`)."""

    def __init__(self, corpus: np.ndarray) -> None:
        self.corpus = corpus

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_top_k(queries, self.corpus, k)


class _FaissSearch:
    """Top-k inner-product search with faiss's exact ``IndexFlatIP``, its candidates rescored as
    :func:`contrasent.search.topk.exact_top_k` does: the same scores and ties as :class:`_ExactSearch`."""

    def __init__(self, corpus: np.ndarray) -> None:
        try:
            import faiss
        except ImportError as error:
            raise ImportError(
                "use_faiss=True needs faiss: pip install faiss-cpu (or faiss-gpu), or use_faiss=False for "
                "the exact numpy search"
            ) from error
        self.corpus = corpus
        self.index = faiss.IndexFlatIP(corpus.shape[1])
        self.index.add(np.ascontiguousarray(corpus, dtype=np.float32))

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        _, candidates = self.index.search(queries, candidate_count(k, len(self.corpus)))
        candidates = candidates.astype(np.int64)
        return rank_candidates(rescore(queries, self.corpus, candidates), candidates, k)


def _check_arguments(
    num_negatives: int,
    rank_range: tuple[int, int | None],
    margin: float | None,
    relative_margin: float | None,
    sampling: str,
    output_format: str,
    batch_size: int,
) -> _Rules:
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(f"num_negatives must be a positive integer, got {num_negatives!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        min_rank, max_rank = rank_range
    except (TypeError, ValueError):
        raise ValueError(f"range must be a pair (min_rank, max_rank), got {rank_range!r}") from None
    if not isinstance(min_rank, int) or min_rank < 0 or (
        max_rank is not None and (not isinstance(max_rank, int) or max_rank <= min_rank)
    ):
        raise ValueError(f"range must satisfy 0 <= min_rank < max_rank (or max_rank None), got {rank_range!r}")
    if margin is not None and not margin >= 0:
        raise ValueError(f"margin must be >= 0 or None, got {margin}")
    if relative_margin is not None and not 0 <= relative_margin < 1:
        raise ValueError(f"relative_margin must be in [0, 1) or None, got {relative_margin}")
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
    return _Rules(num_negatives, min_rank, max_rank, margin, relative_margin, sampling)


def _text_columns(dataset: Dataset, anchor: str | None, positive: str | None, source: str) -> tuple[str, str]:
    names = list(dataset.column_names)
    if (anchor is None or positive is None) and len(names) < 2:
        raise ValueError(f"{source} needs an anchor and a positive column, has {names}")
    anchor = anchor or names[0]
    positive = positive or names[1]
    for role, name in (("anchor_column", anchor), ("positive_column", positive)):
        if name not in names:
            raise ValueError(f"{source}: {role} {name!r} is not a column; the columns are {names}")
    if anchor == positive:
        raise ValueError(f"{source}: anchor_column and positive_column are both {anchor!r}; give two columns")
    return anchor, positive


def _column(dataset: Dataset, name: str) -> list[str]:
    """The strings of one column (checked by :func:`check_mining_data`)."""
    return dataset.select_columns([name]).with_format("arrow")[:].column(name).to_pylist()
