"""Retrieval metrics and search: hand-computed cases, pytrec_eval (trec_eval) as the oracle, SciFact."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import pytrec_eval

from contrasent.evaluation import (
    Document,
    RetrievalData,
    RetrievalEvaluator,
    evaluate_run,
    query_metrics,
    read_beir,
)
from contrasent.evaluation.retrieval import rank_documents
from contrasent.search.topk import l2_normalize

from .conftest import TableEncoder


def test_query_metrics_hand_computed_graded():
    # ranking d1 d2 d3 d4; d2 has grade 2, d4 grade 1, d9 (grade 1) is never retrieved; d1 judged 0.
    judged = {"d1": 0, "d2": 2, "d4": 1, "d9": 1}
    metrics = query_metrics(["d1", "d2", "d3", "d4"], judged, [1, 3, 5])
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)  # ideal: grades 2, 1, 1
    expected = {
        "ndcg@1": 0.0, "mrr@1": 0.0, "recall@1": 0.0, "map@1": 0.0, "precision@1": 0.0,
        "ndcg@3": (2 / math.log2(3)) / idcg, "mrr@3": 1 / 2, "recall@3": 1 / 3, "map@3": (1 / 2) / 3,
        "precision@3": 1 / 3,
        "ndcg@5": (2 / math.log2(3) + 1 / math.log2(5)) / idcg, "mrr@5": 1 / 2, "recall@5": 2 / 3,
        "map@5": (1 / 2 + 2 / 4) / 3, "precision@5": 2 / 5,
    }  # fmt: skip
    assert metrics == pytest.approx(expected, abs=1e-12)


def test_query_without_relevant_document_scores_zero_and_counts_in_the_average():
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}}
    run = {"q1": {"a": 0.9, "b": 0.1}, "q2": {"a": 0.9, "b": 0.1}}
    metrics = evaluate_run(qrels, run, [1, 2])
    assert metrics["ndcg@1"] == 0.5  # q1: 1, q2: 0 (no relevant document), averaged over 2 queries
    assert metrics["recall@2"] == 0.5
    assert metrics["mrr@2"] == 0.5
    assert metrics["precision@2"] == 0.25


def test_ties_are_broken_by_decreasing_document_id_like_trec_eval():
    assert rank_documents({"a": 0.5, "b": 0.5, "c": 0.9, "d10": 0.5}) == ["c", "d10", "b", "a"]
    qrels = {"q": {"a": 1}}
    # a and b tie; trec_eval puts b first, so a is at rank 2.
    assert evaluate_run(qrels, {"q": {"a": 0.5, "b": 0.5}}, [1])["mrr@1"] == 0.0


def test_negative_relevance_counts_as_not_relevant():
    metrics = query_metrics(["x", "y"], {"x": -1, "y": 1}, [2])
    assert metrics["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert metrics["recall@2"] == 1.0


def test_evaluate_run_refuses_a_run_missing_a_judged_query():
    with pytest.raises(ValueError, match="no ranking"):
        evaluate_run({"q1": {"a": 1}, "q2": {"a": 1}}, {"q1": {"a": 1.0}}, [1])


def test_bad_k_values_are_rejected():
    with pytest.raises(ValueError, match="k_values"):
        evaluate_run({"q": {"a": 1}}, {"q": {"a": 1.0}}, [0])


def _random_case(seed: int):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(40)]
    qrels, run = {}, {}
    for q in range(25):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([0, 0, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 8))}
        # scores on a coarse grid so that ties are frequent
        run[qid] = {d: rng.randint(0, 6) / 6 for d in rng.sample(docs, rng.randint(1, 30))}
    return qrels, run


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_pytrec_eval_on_random_graded_runs_with_ties(seed):
    qrels, run = _random_case(seed)
    k_values = [1, 3, 5, 10, 100]
    ours = evaluate_run(qrels, run, k_values)
    ks = ",".join(map(str, k_values))
    oracle = pytrec_eval.RelevanceEvaluator(
        qrels, {f"ndcg_cut.{ks}", f"recall.{ks}", f"P.{ks}", f"map_cut.{ks}"}
    )
    per_query = oracle.evaluate(run)
    for k in k_values:
        for ours_name, trec_name in [
            ("ndcg", "ndcg_cut"),
            ("recall", "recall"),
            ("precision", "P"),
            ("map", "map_cut"),
        ]:
            expected = np.mean([scores[f"{trec_name}_{k}"] for scores in per_query.values()])
            assert ours[f"{ours_name}@{k}"] == pytest.approx(expected, abs=1e-12), (ours_name, k)
        # MRR@k = trec_eval's recip_rank on the run cut to its top k (in trec_eval's order)
        cut = {q: {d: run[q][d] for d in rank_documents(run[q])[:k]} for q in run}
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        assert ours[f"mrr@{k}"] == pytest.approx(np.mean([s["recip_rank"] for s in rr.values()]), abs=1e-12)


def _toy_data() -> RetrievalData:
    corpus = {
        "q1": Document("", "apple pie"),  # same id as query q1: BEIR drops it from q1's ranking by default
        "d1": Document("Apple", "pie recipe"),
        "d2": Document("", "banana bread"),
        "d3": Document("", "cherry tart"),
        "d4": Document("", "cherry tart"),  # a duplicate text: ties with d3
    }
    return RetrievalData("toy", corpus, {"q1": "apple pie", "q2": "tart"}, {"q1": {"d1": 1}, "q2": {"d3": 1}})


TOY_TABLE = {
    "apple pie": [1.0, 0.0, 0.0],
    "Apple pie recipe": [0.9, 0.1, 0.0],
    "banana bread": [0.0, 1.0, 0.0],
    "cherry tart": [0.0, 0.2, 1.0],
    "tart": [0.0, 0.0, 1.0],
    "query: apple pie": [1.0, 0.0, 0.0],
    "query: tart": [0.0, 0.0, 1.0],
    "passage: apple pie": [0.0, 0.0, 1.0],
    "passage: Apple pie recipe": [1.0, 0.0, 0.0],
    "passage: banana bread": [0.0, 1.0, 0.0],
    "passage: cherry tart": [0.0, 1.0, 0.0],
}


def test_identical_ids_are_ignored_by_default_and_kept_on_request(tmp_path):
    data = _toy_data()
    model = TableEncoder(TOY_TABLE)
    run = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False).search(model)
    assert list(run["q1"]) == ["d1", "d4", "d3"]  # "q1" (the identical id) is gone; d4 before d3 (tie)
    kept = RetrievalEvaluator(data, k_values=[1, 3], ignore_identical_ids=False, show_progress_bar=False)
    assert list(kept.search(model)["q1"]) == ["q1", "d1", "d4"]
    metrics = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False)(model, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"toy": metrics}
    # q1: d1 at rank 1; q2: d4 (tie with d3, larger id) first, d3 second
    assert metrics["mrr@1"] == 0.5
    assert metrics["mrr@3"] == pytest.approx((1 + 1 / 2) / 2)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_title_and_text_joined_and_prefixes_applied():
    data = _toy_data()
    model = TableEncoder(TOY_TABLE)
    evaluator = RetrievalEvaluator(
        data, k_values=[1], query_prefix="query: ", document_prefix="passage: ", show_progress_bar=False
    )
    run = evaluator.search(model)
    encoded = {text for call in model.calls for text in call}
    assert "passage: Apple pie recipe" in encoded and "query: tart" in encoded
    assert list(run["q1"]) == ["d1"]  # with the prefixes, "passage: apple pie" no longer matches


def test_chunked_search_equals_full_score_matrix():
    """Chunking changes the BLAS kernel of the products, not the run: scores are rescored per pair
    (`contrasent.search.topk`), so the full and chunked searches return the same bits."""
    rng = np.random.default_rng(0)
    n_docs, n_queries = 203, 17
    vectors = rng.normal(size=(n_docs + n_queries, 8)).round(1)  # rounding makes ties possible
    texts = [f"t{i}" for i in range(n_docs + n_queries)]
    model = TableEncoder(dict(zip(texts, vectors.tolist())))
    corpus = {f"d{i}": Document("", texts[i]) for i in range(n_docs)}
    queries = {f"q{j}": texts[n_docs + j] for j in range(n_queries)}
    data = RetrievalData("random", corpus, queries, {q: {"d0": 1} for q in queries})
    full = RetrievalEvaluator(data, k_values=[10], show_progress_bar=False).search(model)
    chunked = RetrievalEvaluator(
        data, k_values=[10], corpus_chunk_size=7, query_chunk_size=3, show_progress_bar=False
    ).search(model)
    assert full == chunked
    # the reference: float64 products of the float32 unit vectors, trec_eval's order (score, then id)
    normalized = l2_normalize(vectors.astype(np.float32)).astype(np.float64)
    scores = normalized[n_docs:] @ normalized[:n_docs].T
    for j, q in enumerate(queries):
        expected = rank_documents({f"d{i}": float(s) for i, s in enumerate(scores[j])})[:10]
        assert list(full[q]) == expected
        np.testing.assert_allclose(list(full[q].values()), [scores[j][int(d[1:])] for d in expected], atol=1e-12)


@pytest.fixture(scope="session")
def scifact(data_dir):
    return read_beir(data_dir / "beir_scifact", split="test")


@pytest.fixture(scope="session")
def scifact_run(scifact, minilm):
    return RetrievalEvaluator(scifact, show_progress_bar=False).search(minilm)


@pytest.mark.slow
def test_scifact_minilm_equals_pytrec_eval(scifact, scifact_run):
    ours = evaluate_run(scifact.qrels, scifact_run, [10, 100])
    oracle = pytrec_eval.RelevanceEvaluator(scifact.qrels, {"ndcg_cut.10", "recall.100"}).evaluate(
        scifact_run
    )
    assert len(oracle) == len(scifact.qrels) == 300
    assert ours["ndcg@10"] == pytest.approx(np.mean([s["ndcg_cut_10"] for s in oracle.values()]), abs=1e-6)
    assert ours["recall@100"] == pytest.approx(np.mean([s["recall_100"] for s in oracle.values()]), abs=1e-6)
    top10 = {q: {d: docs[d] for d in rank_documents(docs)[:10]} for q, docs in scifact_run.items()}
    rr = pytrec_eval.RelevanceEvaluator(scifact.qrels, {"recip_rank"}).evaluate(top10)
    assert ours["mrr@10"] == pytest.approx(np.mean([s["recip_rank"] for s in rr.values()]), abs=1e-6)
    # the published figure (MTEB / BEIR, max_seq_length 256) is 64.5
    assert ours["ndcg@10"] == pytest.approx(0.645, abs=0.005)


def test_the_models_query_and_document_prompts_are_used(tiny_bert_dir):
    from contrasent import SentenceEncoder

    data = _toy_data()
    model = SentenceEncoder.from_pretrained(tiny_bert_dir, prompts={"query": "query: ", "passage": "passage: "},
                                            include_prompt=False)
    recording = []
    encode = model.encode
    model.encode = lambda texts, **options: recording.append(options.get("prompt")) or encode(texts, **options)
    run = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False).search(model)
    assert recording[0] == "query: " and set(recording[1:]) == {"passage: "}  # "passage" as encode_document's
    by_hand = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False, query_prompt="query: ",
                                 document_prompt="passage: ").search(SentenceEncoder.from_pretrained(
                                     tiny_bert_dir, prompts={}, include_prompt=False))
    assert run == by_hand
    with pytest.raises(ValueError, match=r"prompt_name 'title' is not one of this model's prompts"):
        RetrievalEvaluator(data, query_prompt_name="title", show_progress_bar=False).search(model)


def test_a_prompt_is_put_before_the_texts_of_a_model_without_prompts():
    table = {f"{prefix}{text}": vector for text, vector in TOY_TABLE.items() for prefix in ("q: ", "d: ")}
    model = TableEncoder(table)
    RetrievalEvaluator(_toy_data(), k_values=[1], show_progress_bar=False, query_prompt="q: ",
                       document_prompt="d: ").search(model)
    assert "q: tart" in model.calls[0] and "d: Apple pie recipe" in model.calls[1]


def test_truncate_dim_scores_the_first_dimensions():
    data = _toy_data()
    full = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False).search(TableEncoder(TOY_TABLE))
    two = {text: vector[:2] for text, vector in TOY_TABLE.items()}
    expected = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False).search(TableEncoder(two))
    truncated = RetrievalEvaluator(data, k_values=[1, 3], show_progress_bar=False, truncate_dim=2)
    assert truncated.search(TableEncoder(TOY_TABLE)) == expected != full
    with pytest.raises(ValueError, match=r"truncate_dim must be in 1\.\.3 \(the model's embedding dimension\), got 4"):
        RetrievalEvaluator(data, truncate_dim=4, show_progress_bar=False).search(TableEncoder(TOY_TABLE))
