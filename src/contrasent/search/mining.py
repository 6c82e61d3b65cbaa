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
``.npy`` files keyed by a hash of the model identity and the texts (:mod:`contrasent.search.embedding_cache`).
The corpus's embeddings can instead come from the shards ``contrasent encode`` wrote
(``corpus_embeddings=``, :mod:`contrasent.search.shard_mining`): they are then never all in memory.

Mining runs block by block (one implementation, in memory or from shards): ``query_block_size`` distinct
anchors are embedded, ranked against the corpus block by block with a running top-k
(:func:`contrasent.search.blockwise.blockwise_top_k`), and their rows' negatives selected, before the next
block. Each row's positive is scored in the same pass, from the same rows. Memory therefore holds one
block of anchors, their candidates and one corpus block, plus the rows' results, whatever the number of
anchors; the corpus only when it is mined in memory. Search is exact: chunked matrix products, or faiss's
exact inner-product index with ``use_faiss=True``; either way the candidates are rescored by
:func:`contrasent.search.topk.rescore`, so the mined negatives do not depend on the backend, the block
sizes, the chunking or the CPU (see :mod:`contrasent.search.topk`). ``sampling="random"`` draws each row's
negatives with a generator seeded by ``(seed, row)``: the same draws however the rows are split.

Under ``torch.distributed`` each process mines a contiguous part of the distinct anchors and every
process returns the whole result (:mod:`contrasent.search.shard_ranks`'s ``gather``).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from contrasent.data.columns import ColumnLayout
from contrasent.data.validation import validate_training_data
from contrasent.search.blockwise import (
    BlockSearch,
    CorpusBlocks,
    MatrixBlocks,
    blockwise_top_k,
    exact_search,
    faiss_search,
)
from contrasent.search.corpus import read_corpus
from contrasent.search.embedding_cache import encode_cached, model_identity
from contrasent.search.index_checks import first_non_finite_row
from contrasent.search.mining_stats import MiningStats
from contrasent.search.shard_mining import open_shards
from contrasent.search.shard_ranks import contiguous_part, gather, rank_and_world
from contrasent.search.text_checks import check_positive_int, short_repr
from contrasent.search.topk import l2_normalize, rescore

if TYPE_CHECKING:
    from datasets import Dataset

SAMPLING = ("top", "random")
OUTPUT_FORMATS = ("n-tuple", "triplet")


def mine_hard_negatives(
    dataset: Dataset,
    model: Any,
    corpus: Sequence[str] | str | os.PathLike | None = None,
    *,
    corpus_embeddings: str | os.PathLike | None = None,
    anchor_column: str | None = None,
    positive_column: str | None = None,
    num_negatives: int = 3,
    range: tuple[int, int | None] = (0, 100),  # shadows the builtin here only: the name users know
    margin: float | None = None,
    relative_margin: float | None = None,
    sampling: str = "top",
    output_format: str = "n-tuple",
    batch_size: int = 32,
    query_block_size: int = 4096,
    corpus_block_size: int | None = None,
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
            :class:`~contrasent.SentenceEncoder` or a sentence-transformers model (with
            ``corpus_embeddings``: the :class:`~contrasent.SentenceEncoder` that wrote them).
        corpus: texts to mine from (default: the dataset's distinct positives), or a corpus file read by
            :func:`contrasent.search.corpus.read_corpus`; duplicates are merged (the first one is kept).
        corpus_embeddings: a folder of shards that ``contrasent encode`` (:func:`~contrasent.search.corpus_shards.encode_corpus`)
            wrote for ``corpus`` (then required, one text per row) with ``model``: the corpus is not encoded
            but read from there, block by block (:mod:`contrasent.search.shard_mining` says what is checked).
            A positive that is not in the corpus is then embedded (without shards it is refused).
        anchor_column, positive_column: default the dataset's first and second columns.
        num_negatives: k ≥ 1 columns ``negative_1 … negative_k`` are added.
        range: ``(min_rank, max_rank)``, half-open; ``max_rank=None`` means the whole corpus.
        margin: absolute margin m ≥ 0 (``s ≤ s⁺ − m``), or None.
        relative_margin: r in [0, 1) (``s ≤ s⁺ (1 − r)``), or None.
        sampling: ``"top"`` or ``"random"`` (within the qualifying texts of the range).
        output_format: ``"n-tuple"`` (columns ``negative_1 … negative_k``) or ``"triplet"`` (a
            ``negative`` column, one row per mined negative; see the module docstring).
        batch_size: passed to ``model.encode`` when it accepts it.
        query_block_size: distinct anchors embedded and searched at a time (memory: ``query_block_size × d``
            embeddings and ``query_block_size × depth`` candidates, whatever the number of anchors).
        corpus_block_size: corpus rows searched at a time (default: the whole in-memory corpus, or one
            shard). Neither block size changes the result.
        use_faiss: search with faiss (``faiss-cpu``/``faiss-gpu``) instead of numpy; both are exact.
        cache_dir: store / reuse embeddings there (``.npy``). The key is the model identity (class,
            name or path, configuration) and the texts, not the weights: pass ``model_id`` (or clear the
            cache) when the weights change under the same name.
        model_id: overrides the model identity in the cache key.
        seed: for ``sampling="random"`` (each row draws from a generator seeded by ``(seed, row)``).
        verbose: print the statistics (on rank 0).
        return_stats: also return the :class:`MiningStats`.
        source: names the dataset in error messages (``contrasent mine`` passes the file).

    Under ``torch.distributed`` (a process group initialized before the call, every process calling with
    the same arguments), each rank mines a contiguous part of the distinct anchors and the rows are gathered:
    every rank returns the result one process returns.

    Raises:
        ValueError / TypeError: bad arguments, or an anchor or positive that is missing (``None``), not a
            string or blank, named by ``source``, row and column (:func:`check_mining_data`); all before
            anything is encoded. With ``corpus_embeddings``: shards that do not belong to ``model`` or
            ``corpus`` (:func:`contrasent.search.shard_mining.open_shards`).

    Returns:
        The dataset with ``negative_1 … negative_k`` added (same rows, same order), or for ``"triplet"``
        each row once per negative with ``negative`` added; and the stats if ``return_stats``.
    """
    rules = _check_arguments(num_negatives, range, margin, relative_margin, sampling, output_format, batch_size)
    query_block_size = check_positive_int(query_block_size, "query_block_size")
    if corpus_block_size is not None:
        corpus_block_size = check_positive_int(corpus_block_size, "corpus_block_size")
    columns = check_mining_data(dataset, anchor_column, positive_column, source)
    corpus_file = None
    if isinstance(corpus, (str, os.PathLike)):
        corpus_file, corpus = corpus, read_corpus(corpus)[1]
    if corpus_embeddings is not None and corpus is None:
        raise ValueError("corpus_embeddings needs the corpus they were encoded from: pass corpus (its file, or its "
                         "texts in the file's order)")
    texts = _gather_texts(dataset, corpus, *columns, merge_corpus=corpus_embeddings is None)
    if use_faiss:
        _check_faiss()
    embed = _Embedder(model, batch_size, cache_dir, model_id or model_identity(model))
    if corpus_embeddings is None:
        blocks: CorpusBlocks = MatrixBlocks(embed(texts.corpus, "corpus text"), corpus_block_size)
    else:
        keep = np.zeros(len(texts.corpus), dtype=bool)
        keep[list(texts.corpus_row.values())] = True
        blocks = open_shards(corpus_embeddings, model, texts.corpus, keep, corpus_file, corpus_block_size)
    mined = _mine_rows(texts, blocks, embed, faiss_search if use_faiss else exact_search, rules, seed, query_block_size)
    negatives = [[texts.corpus[i] for i in result.ids] + [None] * (rules.k - len(result.ids)) for result in mined]
    stats = MiningStats.collect(negatives, np.array([result.positive_score for result in mined]),
                                [score for result in mined for score in result.scores],
                                sum(result.filled for result in mined), num_negatives)
    if verbose and rank_and_world()[0] == 0:
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
    embedding each) with their positions and rows, and the ``corpus`` texts by position with the first
    position of each distinct text (``corpus_row``)."""

    anchors: list[str]
    positives: list[str]
    queries: list[str]
    query_row: dict[str, int]
    rows_of_query: list[list[int]]
    corpus: list[str]
    corpus_row: dict[str, int]


def _gather_texts(
    dataset: Dataset, corpus: Sequence[str] | None, anchor_column: str, positive_column: str, merge_corpus: bool = True,
) -> _Texts:
    """The run's texts; ``merge_corpus``: the corpus's repeated texts are dropped (in memory) rather than
    only skipped by the search (shards: one text per row), and every positive must be in the corpus."""
    anchors = _column(dataset, anchor_column)
    positives = _column(dataset, positive_column)
    corpus_texts = list(positives if corpus is None else corpus)
    for index, text in enumerate(corpus_texts):
        if not isinstance(text, str):
            raise TypeError(f"corpus[{index}] must be a str, got {type(text).__name__}")
    if merge_corpus:
        corpus_texts = list(dict.fromkeys(corpus_texts))
    corpus_row: dict[str, int] = {}
    for i, text in enumerate(corpus_texts):
        corpus_row.setdefault(text, i)
    missing = [text for text in positives if text not in corpus_row]
    if missing and merge_corpus:
        raise ValueError(
            f"{len(missing)} positives are not in corpus (e.g. {missing[0][:80]!r}); the positive's score "
            "is needed for the margin rules, add the positives to the corpus"
        )
    queries = list(dict.fromkeys(anchors))
    query_row = {text: i for i, text in enumerate(queries)}
    rows_of_query: list[list[int]] = [[] for _ in queries]
    for row, anchor in enumerate(anchors):
        rows_of_query[query_row[anchor]].append(row)
    return _Texts(anchors, positives, queries, query_row, rows_of_query, corpus_texts, corpus_row)


class _Embedder:
    """L2-normalized embeddings of texts (through the cache); a NaN or infinite embedding is refused, naming
    its text: it would rank first or never for every anchor."""

    def __init__(self, model: Any, batch_size: int, cache_dir: str | os.PathLike | None, identity: str) -> None:
        self.model, self.batch_size, self.cache_dir, self.identity = model, batch_size, cache_dir, identity

    def __call__(self, texts: list[str], kind: str) -> np.ndarray:
        """(len(texts), d) float32 unit rows; ``kind`` names the texts in the error."""
        embeddings = encode_cached(self.model, texts, self.batch_size, self.cache_dir, self.identity)
        bad_row = first_non_finite_row(embeddings)
        if bad_row is not None:
            raise ValueError(f"the model embedded the {kind} {short_repr(texts[bad_row])} as NaN or infinite "
                             "values; nothing can be mined against it")
        return l2_normalize(embeddings)


@dataclass(frozen=True)
class _Mined:
    """One row's result: its negatives' corpus positions and scores (best first), whether any came from
    beyond ``max_rank``, and its positive's score."""

    ids: list[int]
    scores: list[float]
    filled: bool
    positive_score: float


def _mine_rows(
    texts: _Texts, corpus: CorpusBlocks, embed: _Embedder, search: BlockSearch, rules: _Rules, seed: int,
    query_block_size: int,
) -> list[_Mined]:
    """Every row's result, in row order: this process mines its contiguous part of the distinct anchors,
    ``query_block_size`` at a time, and under ``torch.distributed`` the parts are gathered on every rank."""
    rank, world = rank_and_world()
    part = contiguous_part(list(builtins.range(len(texts.queries))), rank, world)
    mined: dict[int, _Mined] = {}
    for begin in builtins.range(0, len(part), query_block_size):
        mined.update(_mine_block(part[begin:begin + query_block_size], texts, corpus, embed, search, rules, seed))
    if world > 1:
        mined = {row: result for rank_mined in gather(mined) for row, result in rank_mined.items()}
    return [mined[row] for row in builtins.range(len(texts.anchors))]


def _mine_block(
    block: list[int], texts: _Texts, corpus: CorpusBlocks, embed: _Embedder, search: BlockSearch, rules: _Rules,
    seed: int,
) -> dict[int, _Mined]:
    """The rows of the distinct anchors ``block`` (positions in ``texts.queries``), mined.

    The anchors are embedded and ranked against the corpus deep enough for the range after their
    exclusions (their rows' positives and the anchor text itself); each row's positive is scored in the
    same pass. A row that finds fewer than k qualifying texts there is searched again twice as deep (its
    anchor with the others of the block that need it), until it has k or has seen the corpus.
    """
    queries = embed([texts.queries[q] for q in block], "anchor")  # (len(block), d)
    if queries.shape[1] != corpus.dim:
        raise ValueError(f"model.encode returned dimensions {queries.shape[1]} and {corpus.dim}")
    local = {q: j for j, q in enumerate(block)}
    rows = [row for q in block for row in texts.rows_of_query[q]]
    query_of = {row: local[texts.query_row[texts.anchors[row]]] for row in rows}
    excluded = _block_exclusions(block, rows, query_of, texts)
    rules = replace(rules, max_rank=corpus.size if rules.max_rank is None else min(rules.max_rank, corpus.size))
    depth = min(corpus.size, rules.max_rank + max(len(e) for e in excluded))
    in_corpus = [row for row in rows if texts.positives[row] in texts.corpus_row]
    pairs = np.array([(query_of[row], texts.corpus_row[texts.positives[row]]) for row in in_corpus], dtype=np.int64)
    top_scores, top_ids, pair_scores = blockwise_top_k(queries, corpus, depth, search, pairs)
    positive_scores = dict(zip(in_corpus, pair_scores.tolist()))
    outside = [row for row in rows if row not in positive_scores]
    if outside:  # shards only: a positive that no row of the corpus holds is embedded here
        positive_scores.update(zip(outside, _scores_of_outside_positives(queries, outside, query_of, texts, embed)))
    ranking = {j: (top_scores[j], top_ids[j]) for j in builtins.range(len(block))}
    mined: dict[int, _Mined] = {}
    pending = rows
    while pending:
        deeper = []
        for row in pending:
            scores, ids = ranking[query_of[row]]
            chosen, chosen_scores, filled = _select(
                scores, ids, excluded[query_of[row]], positive_scores[row], rules,
                lambda row=row: np.random.default_rng([seed, row]))
            if len(chosen) == rules.k or len(ids) == corpus.size:
                mined[row] = _Mined(chosen, chosen_scores, filled, positive_scores[row])
            else:
                deeper.append(row)
        if deeper:
            depth = min(corpus.size, 2 * depth)
            again = sorted({query_of[row] for row in deeper})
            scores, ids, _ = blockwise_top_k(queries[again], corpus, depth, search)
            ranking.update((j, (scores[i], ids[i])) for i, j in enumerate(again))
        pending = deeper
    return mined


def _block_exclusions(block: list[int], rows: list[int], query_of: dict[int, int], texts: _Texts) -> list[set[int]]:
    """For each anchor of ``block``, the corpus positions never mined for it: its labelled positives (over
    all its ``rows``) and the anchor text itself, where the corpus holds them."""
    excluded: list[set[int]] = [set() for _ in block]
    for row in rows:
        if texts.positives[row] in texts.corpus_row:
            excluded[query_of[row]].add(texts.corpus_row[texts.positives[row]])
    for j, q in enumerate(block):
        if texts.queries[q] in texts.corpus_row:
            excluded[j].add(texts.corpus_row[texts.queries[q]])
    return excluded


def _scores_of_outside_positives(
    queries: np.ndarray, rows: list[int], query_of: dict[int, int], texts: _Texts, embed: _Embedder,
) -> list[float]:
    """The positive scores of ``rows`` whose positive is in no corpus row: each distinct positive embedded,
    scored against its anchor's (Q, d) embedding as :func:`~contrasent.search.topk.rescore` scores."""
    distinct = list(dict.fromkeys(texts.positives[row] for row in rows))
    position = {text: i for i, text in enumerate(distinct)}
    return rescore(queries[[query_of[row] for row in rows]], embed(distinct, "positive"),
                   np.array([[position[texts.positives[row]]] for row in rows], dtype=np.int64))[:, 0].tolist()


def _select(
    scores: np.ndarray,
    ids: np.ndarray,
    excluded: set[int],
    positive_score: float,
    rules: _Rules,
    rng: Callable[[], np.random.Generator],
) -> tuple[list[int], list[float], bool]:
    """Corpus ids and scores of one row's negatives from its ranking (``ids`` best first, ``rules.max_rank``
    an int), and whether any came from beyond ``max_rank``. ``rng`` makes the row's generator, called only
    when it draws: the draws of a row do not depend on the other rows, nor on how deep it was ranked."""
    keep = ~np.isin(ids, list(excluded))
    scores, ids = scores[keep], ids[keep]  # position in these arrays = rank
    qualifies = np.ones(len(ids), dtype=bool)
    if rules.margin is not None:
        qualifies &= scores <= positive_score - rules.margin
    if rules.relative_margin is not None:
        qualifies &= scores <= positive_score * (1 - rules.relative_margin)
    in_range = np.flatnonzero(qualifies[rules.min_rank:rules.max_rank]) + rules.min_rank
    if rules.sampling == "random" and len(in_range) > rules.k:
        in_range = np.sort(rng().choice(in_range, size=rules.k, replace=False))
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


def _check_faiss() -> None:
    try:
        import faiss  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "use_faiss=True needs faiss: pip install faiss-cpu (or faiss-gpu), or use_faiss=False for "
            "the exact numpy search"
        ) from error


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
