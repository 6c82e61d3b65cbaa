"""Retrieval evaluation as BEIR computes it: exact cosine search, then trec_eval's metrics.

BEIR (Thakur et al., NeurIPS 2021 Datasets and Benchmarks) scores a dense model by encoding queries and
``(title + " " + text).strip()`` of each document, ranking the whole corpus by cosine similarity, and
handing the top of each ranking to ``pytrec_eval`` (trec_eval). The metric functions here reproduce
trec_eval's definitions, which the tests check against ``pytrec_eval``:

- a ranking is ordered by score, ties broken by document id in decreasing string order (trec_eval's rule);
- nDCG@k: gain = graded relevance (linear, negative counted as 0), discount ``log2(rank + 1)``, normalized
  by the ideal ranking of all judged documents;
- Recall@k and MAP@k divide by the number of relevant documents (relevance >= 1) of the query;
- Precision@k divides by k; MRR@k is the reciprocal rank of the first relevant document within k;
- figures are averaged over the judged queries; a query whose judgments are all 0 scores 0.

Values are fractions in [0, 1], unrounded (BEIR prints them rounded to 5 decimals).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from contrasent.evaluation.encoding import encode_texts
from contrasent.evaluation.report import markdown_table, save_results
from contrasent.evaluation.retrieval_data import RetrievalData
from contrasent.models.encoding import Encoder
from contrasent.models.prompts import role_prompt
from contrasent.search.topk import candidate_count, exact_top_k, l2_normalize, rank_candidates

DEFAULT_K_VALUES = (1, 3, 5, 10, 100)
METRICS = ("ndcg", "mrr", "recall", "map", "precision")

Run = dict[str, dict[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def rank_documents(scores: Mapping[str, float]) -> list[str]:
    """Document ids by decreasing score, ties by decreasing id, as trec_eval orders a run."""
    return [doc_id for doc_id, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def query_metrics(
    ranking: Sequence[str], judged: Mapping[str, int], k_values: Sequence[int]
) -> dict[str, float]:
    """nDCG, MRR, Recall, MAP and Precision at each k for one query.

    Args:
        ranking: retrieved document ids, best first.
        judged: document id -> graded relevance for this query (unjudged documents count as 0).
        k_values: the cutoffs.
    """
    relevance = [judged.get(doc_id, 0) for doc_id in ranking]
    n_relevant = sum(1 for value in judged.values() if value >= 1)
    ideal = sorted((value for value in judged.values() if value > 0), reverse=True)
    metrics: dict[str, float] = {}
    for k in k_values:
        top = relevance[:k]
        dcg = sum(max(value, 0) / math.log2(rank + 2) for rank, value in enumerate(top))
        idcg = sum(value / math.log2(rank + 2) for rank, value in enumerate(ideal[:k]))
        hits, precision_sum, first_hit = 0, 0.0, None
        for rank, value in enumerate(top):
            if value >= 1:
                hits += 1
                precision_sum += hits / (rank + 1)
                first_hit = rank if first_hit is None else first_hit
        metrics[f"ndcg@{k}"] = dcg / idcg if idcg > 0 else 0.0
        metrics[f"mrr@{k}"] = 1.0 / (first_hit + 1) if first_hit is not None else 0.0
        metrics[f"recall@{k}"] = hits / n_relevant if n_relevant else 0.0
        metrics[f"map@{k}"] = precision_sum / n_relevant if n_relevant else 0.0
        metrics[f"precision@{k}"] = hits / k
    return metrics


def _check_k_values(k_values: Sequence[int]) -> tuple[int, ...]:
    k_values = tuple(k_values)
    if not k_values or any(not isinstance(k, int) or k < 1 for k in k_values):
        raise ValueError(f"k_values must be positive integers, got {k_values}")
    return tuple(sorted(set(k_values)))


def evaluate_run(
    qrels: Qrels, run: Mapping[str, Mapping[str, float]], k_values: Sequence[int] = DEFAULT_K_VALUES
) -> dict[str, float]:
    """Metrics of a run (query id -> {document id: score}), averaged over the queries of ``qrels``.

    Every judged query must be in the run (trec_eval would silently leave a missing one out of the
    average); queries of the run without judgments are ignored, as trec_eval does.
    """
    k_values = _check_k_values(k_values)
    missing = [query_id for query_id in qrels if query_id not in run]
    if missing:
        raise ValueError(f"{len(missing)} judged queries have no ranking in the run, e.g. {missing[:3]}")
    if not qrels:
        raise ValueError("qrels is empty: no query to evaluate")
    totals = dict.fromkeys((f"{metric}@{k}" for metric in METRICS for k in k_values), 0.0)
    for query_id, judged in qrels.items():
        for name, value in query_metrics(rank_documents(run[query_id]), judged, k_values).items():
            totals[name] += value
    return {name: total / len(qrels) for name, total in totals.items()}


class RetrievalEvaluator:
    """Exact cosine-similarity retrieval over a corpus, scored with BEIR's metrics.

    Args:
        data: the benchmark (:func:`~contrasent.evaluation.retrieval_data.read_beir` or
            :func:`~contrasent.evaluation.retrieval_data.retrieval_from_datasets`).
        k_values: cutoffs of the metrics (default 1, 3, 5, 10, 100); the search keeps ``max(k_values)``
            documents per query.
        ignore_identical_ids: drop a document whose id equals the query id from that query's ranking
            (BEIR's default; matters for data sets like ArguAna or Quora where queries are also documents).
        query_prefix, document_prefix: strings put before each query / document text, e.g. ``"query: "``
            and ``"passage: "`` for E5 models.
        query_prompt_name, document_prompt_name: the model's prompts for queries and documents; default:
            its ``"query"`` prompt, its first of ``"document"``, ``"passage"``, ``"corpus"``, as
            sentence-transformers' ``encode_query`` / ``encode_document`` choose them
            (:func:`contrasent.models.prompts.role_prompt`), else its default prompt, if any.
        query_prompt, document_prompt: prompt strings instead (``""``: none). A prompt goes to the model's
            ``encode(prompt=...)`` when it takes one (so ``include_prompt=False`` is honoured), else is
            put before the texts.
        truncate_dim: score with the first ``truncate_dim`` dimensions of each embedding (a Matryoshka
            model); ``None``: all.
        batch_size: texts per ``encode`` call.
        corpus_chunk_size: documents encoded and scored at a time. Memory holds one chunk's embeddings and
            a (queries × chunk) score matrix, never the full score matrix.
        query_chunk_size: queries scored at a time against a chunk.
        show_progress_bar: show progress bars while encoding.
        name: the task name (default: the data's name).

    Calling the evaluator on a model returns a flat dict: ``ndcg@k``, ``mrr@k``, ``recall@k``, ``map@k``,
    ``precision@k`` for each k, as fractions in [0, 1].
    """

    def __init__(
        self,
        data: RetrievalData,
        k_values: Sequence[int] = DEFAULT_K_VALUES,
        ignore_identical_ids: bool = True,
        query_prefix: str = "",
        document_prefix: str = "",
        batch_size: int = 32,
        corpus_chunk_size: int = 50_000,
        query_chunk_size: int = 1024,
        show_progress_bar: bool = True,
        name: str | None = None,
        query_prompt_name: str | None = None,
        document_prompt_name: str | None = None,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        if corpus_chunk_size < 1 or query_chunk_size < 1:
            raise ValueError("corpus_chunk_size and query_chunk_size must be >= 1")
        if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                         or truncate_dim < 1):
            raise ValueError(f"truncate_dim must be a positive integer, got {truncate_dim!r}")
        for role, prompt, prompt_name in (("query", query_prompt, query_prompt_name),
                                          ("document", document_prompt, document_prompt_name)):
            if prompt is not None and prompt_name is not None:
                raise ValueError(f"give {role}_prompt or {role}_prompt_name, not both")
        self._prompt_choices = {"query": (query_prompt, query_prompt_name),
                                "document": (document_prompt, document_prompt_name)}
        self.truncate_dim = truncate_dim
        self.data = data
        self.k_values = _check_k_values(k_values)
        self.ignore_identical_ids = ignore_identical_ids
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.batch_size = batch_size
        self.corpus_chunk_size = corpus_chunk_size
        self.query_chunk_size = query_chunk_size
        self.show_progress_bar = show_progress_bar
        self.name = name or data.name

    def _encode(self, model: Encoder, texts: list[str], desc: str, role: str) -> np.ndarray:
        prompt = role_prompt(model, role, *self._prompt_choices[role])
        embeddings = encode_texts(model, texts, self.batch_size, self.show_progress_bar, desc, prompt=prompt)
        if self.truncate_dim is not None:
            if self.truncate_dim > embeddings.shape[1]:
                raise ValueError(f"truncate_dim must be in 1..{embeddings.shape[1]} (the model's embedding "
                                 f"dimension), got {self.truncate_dim}")
            embeddings = embeddings[:, : self.truncate_dim]
        return l2_normalize(embeddings)

    def search(self, model: Encoder) -> Run:
        """Rank the corpus for every judged query: query id -> {document id: cosine score}, best
        ``max(k_values)`` documents (fewer if the corpus is smaller).

        The corpus is encoded and searched ``corpus_chunk_size`` documents at a time with
        :func:`contrasent.search.topk.exact_top_k`, whose scores do not depend on the chunking; each query keeps
        the best candidates of all chunks (by score, then corpus position), and the run is cut to
        ``max(k_values)`` in trec_eval's order (score, then document id).
        """
        query_ids = list(self.data.queries)
        queries = self._encode(
            model, [self.query_prefix + self.data.queries[q] for q in query_ids], "Queries", "query"
        )
        top_k = max(self.k_values)
        wanted = top_k + 1 if self.ignore_identical_ids else top_k  # a query's own id may be dropped
        doc_ids = list(self.data.corpus)
        best_scores = np.zeros((len(query_ids), 0))
        best_positions = np.zeros((len(query_ids), 0), dtype=np.int64)
        n_chunks = math.ceil(len(doc_ids) / self.corpus_chunk_size)
        for chunk_number, start in enumerate(range(0, len(doc_ids), self.corpus_chunk_size), start=1):
            chunk_ids = doc_ids[start : start + self.corpus_chunk_size]
            texts = [self.document_prefix + self.data.corpus[d].joined() for d in chunk_ids]
            documents = self._encode(model, texts, f"Corpus chunk {chunk_number}/{n_chunks}", "document")
            keep = candidate_count(wanted, len(doc_ids))
            scores, positions = exact_top_k(queries, documents, keep, query_chunk=self.query_chunk_size)
            best_scores, best_positions = rank_candidates(
                np.concatenate([best_scores, scores], axis=1),
                np.concatenate([best_positions, positions + start], axis=1), keep,
            )
        run: Run = {}
        for query_id, scores, positions in zip(query_ids, best_scores, best_positions):
            pairs = {doc_ids[p]: float(s) for s, p in zip(scores, positions)
                     if not (self.ignore_identical_ids and doc_ids[p] == query_id)}
            run[query_id] = {doc_id: pairs[doc_id] for doc_id in rank_documents(pairs)[:top_k]}
        return run

    def evaluate_run(self, run: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """BEIR's metrics of a run against this data's judgments."""
        return evaluate_run(self.data.qrels, run, self.k_values)

    def __call__(self, model: Encoder, output_path: str | Path | None = None) -> dict[str, float]:
        """The metrics of ``model``; also written to ``output_path`` as ``{name: metrics}`` JSON if given."""
        metrics = self.evaluate_run(self.search(model))
        if output_path is not None:
            save_results({self.name: metrics}, output_path)
        return metrics


_TABLE_ROWS = {"ndcg": "nDCG", "mrr": "MRR", "recall": "Recall", "map": "MAP", "precision": "P"}


def format_retrieval_table(metrics: Mapping[str, float]) -> str:
    """A Markdown table of the metrics ×100: one row per metric, one column per k."""
    k_values = sorted({int(name.split("@")[1]) for name in metrics if "@" in name})
    rows = [
        [label] + [f"{metrics[f'{metric}@{k}'] * 100:.2f}" for k in k_values]
        for metric, label in _TABLE_ROWS.items()
        if f"{metric}@{k_values[0]}" in metrics
    ]
    return markdown_table(["metric (×100)"] + [f"@{k}" for k in k_values], rows)
