"""STS correlations and aggregations: hand-computed values, the 7-task suite, sentence-transformers."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from contrasent.evaluation import (
    STSData,
    STSEvaluator,
    STSSuite,
    aggregate_subsets,
    correlations,
    format_sts_table,
    read_stsb,
)

from .conftest import TableEncoder


def test_correlations_hand_computed_with_ties():
    similarities, gold = [0.1, 0.4, 0.4, 0.9], [1, 2, 3, 3]
    # average ranks: similarities 1, 2.5, 2.5, 4; gold 1, 2, 3.5, 3.5 -> Pearson of ranks = 3.75 / 4.5
    result = correlations(similarities, gold)
    assert result["spearman"] == pytest.approx(3.75 / 4.5 * 100, abs=1e-10)
    assert result["pearson"] == pytest.approx(0.75 / math.sqrt(0.33 * 2.75) * 100, abs=1e-10)


def test_all_wmean_and_mean_differ_as_sentEval_defines_them():
    subsets = {
        "A": (np.array([1.0, 2, 3]), np.array([1.0, 2, 3])),  # Spearman 100
        "B": (np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])),  # Spearman -100
    }
    result = aggregate_subsets(subsets)
    assert result["A/spearman"] == pytest.approx(100) and result["B/spearman"] == pytest.approx(-100)
    assert result["spearman_mean"] == pytest.approx(0)
    assert result["spearman_wmean"] == pytest.approx((3 * 100 - 4 * 100) / 7)
    # pooled ("all"): ranks with ties x = 1.5 3.5 5.5 1.5 3.5 5.5 7, y = 1.5 3.5 5.5 7 5.5 3.5 1.5
    assert result["spearman"] == pytest.approx(-7.75 / 26.5 * 100)


def test_correlations_reject_bad_shapes():
    with pytest.raises(ValueError, match="same length"):
        correlations([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        correlations([0.1], [1.0])


def test_evaluator_uses_cosine_and_encodes_each_text_once(tmp_path):
    model = TableEncoder({"a": [1, 0], "b": [1, 1], "c": [0, 2], "d": [-1, 0]})
    data = STSData("toy", ["a", "a", "b", "c"], ["b", "c", "c", "d"], [3.0, 1.0, 4.0, 0.0])
    evaluator = STSEvaluator(data, show_progress_bar=False)
    cosines = evaluator.similarities(model)["toy"]
    assert cosines == pytest.approx([1 / math.sqrt(2), 0.0, 1 / math.sqrt(2), 0.0])
    assert sorted(text for call in model.calls for text in call) == ["a", "b", "c", "d"]
    assert evaluator(model) == pytest.approx(correlations(cosines, [3.0, 1.0, 4.0, 0.0]))
    evaluator(model, output_path=tmp_path / "sts.json")
    assert json.loads((tmp_path / "sts.json").read_text())["toy"] == pytest.approx(evaluator(model))


class HashEncoder:
    """Deterministic pseudo-random embeddings: a fast stand-in to run the suite on the real files."""

    def encode(self, texts: list[str]) -> np.ndarray:
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        return np.stack([np.random.default_rng(s).normal(size=16) for s in seeds]).astype(np.float32)


def test_suite_on_the_real_files(data_dir):
    suite = STSSuite.from_data_dir(data_dir, show_progress_bar=False)
    assert [e.name for e in suite.evaluators] == [
        "STS12",
        "STS13",
        "STS14",
        "STS15",
        "STS16",
        "STS-B",
        "SICK-R",
    ]
    assert [sum(len(d) for d in e.subsets.values()) for e in suite.evaluators] == [
        3108, 1500, 3750, 3000, 1186, 1379, 4927
    ]  # fmt: skip
    results = suite(HashEncoder())
    tasks = [name for name in results if name != "avg"]
    assert results["avg"]["spearman"] == pytest.approx(
        np.mean([round(results[t]["spearman"], 2) for t in tasks])
    )
    assert set(results["STS14"]) >= {"spearman", "spearman_wmean", "spearman_mean", "deft-forum/spearman"}
    assert all(abs(results[t]["spearman"]) < 10 for t in tasks)  # random embeddings: no correlation
    table = format_sts_table(results).splitlines()
    assert [c.strip() for c in table[0].split("|")[2:-1]] == tasks[:5] + ["STS-B", "SICK-R", "Avg."]
    dev = STSSuite.dev(data_dir, show_progress_bar=False)
    assert [(e.name, len(next(iter(e.subsets.values())))) for e in dev.evaluators] == [
        ("STS-B-dev", 1500), ("SICK-R-dev", 500)
    ]  # fmt: skip


def test_suite_rejects_an_unknown_variant(data_dir):
    with pytest.raises(ValueError, match="variant must be one of"):
        STSSuite.from_data_dir(data_dir, variant="tokenized")


@pytest.mark.slow
def test_stsb_minilm_matches_sentence_transformers_evaluator(data_dir, minilm, tmp_path):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    full = read_stsb(data_dir / "stsbenchmark" / "sts-test.csv")
    n = 500  # the first 500 pairs keep the test fast: sentence-transformers encodes them again itself
    data = STSData("STS-B test[:500]", full.sentences1[:n], full.sentences2[:n], full.scores[:n])
    ours = STSEvaluator(data, show_progress_bar=False)(minilm)
    theirs = EmbeddingSimilarityEvaluator(data.sentences1, data.sentences2, data.scores, write_csv=False)(
        minilm.model
    )
    assert ours["spearman"] == pytest.approx(theirs["spearman_cosine"] * 100, abs=0.01)
    assert ours["pearson"] == pytest.approx(theirs["pearson_cosine"] * 100, abs=0.01)
