"""Offline hard-negative mining: rules checked against a brute-force ranking, on synthetic data and on
SciFact train with all-MiniLM-L6-v2 (encoded once per session)."""

from __future__ import annotations

import csv
import json

import datasets
import numpy as np
import pytest

from contrasent.search.mining import mine_hard_negatives
from contrasent.search.topk import l2_normalize


class LookupModel:
    """``encode`` from fixed embeddings; counts the texts it was asked for."""

    def __init__(self, embeddings: dict[str, np.ndarray]) -> None:
        self.embeddings = embeddings
        self.encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return np.stack([self.embeddings[text] for text in texts])


class RecordingModel:
    """Wraps a real model; keeps every embedding it returned, for the oracle."""

    def __init__(self, model) -> None:
        self.model = model
        self.embeddings: dict[str, np.ndarray] = {}
        self.encoded = 0

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.encoded += len(texts)
        out = self.model.encode(texts, batch_size=batch_size)
        self.embeddings.update(zip(texts, out))
        return out


def oracle_ranking(embeddings, anchor, corpus, excluded):
    """Corpus texts ranked by cosine similarity to ``anchor``, ``excluded`` removed: [(text, score)].

    Rows are normalised in float32 as mining normalises them (one ``l2_normalize``), then scored in float64
    as mining rescores: normalising in float64 instead differs by up to ~1e-7, which could swap a near-tie
    on another CPU's embeddings and fail the strict order checks below."""
    def unit(text):
        return l2_normalize(np.asarray(embeddings[text], dtype=np.float32)[None])[0].astype(np.float64)

    distinct = dict.fromkeys(corpus)  # mining merges duplicate corpus texts
    scored = [(text, float(unit(anchor) @ unit(text)), i) for i, text in enumerate(distinct) if text not in excluded]
    scored.sort(key=lambda item: (-item[1], item[2]))
    return [(text, score) for text, score, _ in scored]


def check_rules(result, stats, embeddings, corpus, k, rank_range, margin=None, relative_margin=None, top=True):
    """Every mined negative: not a labelled positive, inside the range (or filled beyond it, best first),
    the margin rules hold; with ``top``, exactly the k best qualifying texts of the range."""
    positives_of: dict[str, set[str]] = {}
    for row in result:
        positives_of.setdefault(row["anchor"], set()).add(row["positive"])
    min_rank, max_rank = rank_range
    filled = short = 0
    tolerance = 1e-5  # float32 embeddings against the float64 oracle
    for row in result:
        excluded = positives_of[row["anchor"]] | {row["anchor"]}
        ranking = oracle_ranking(embeddings, row["anchor"], corpus, excluded)
        rank_of = {text: r for r, (text, _) in enumerate(ranking)}
        score_of = dict(ranking)
        positive = oracle_ranking(embeddings, row["anchor"], [row["positive"]], set())[0][1]

        def qualifies(score, positive=positive):
            return (margin is None or score <= positive - margin + tolerance) and (
                relative_margin is None or score <= positive * (1 - relative_margin) + tolerance
            )

        negatives = [row[f"negative_{j + 1}"] for j in range(k)]
        present = [n for n in negatives if n is not None]
        assert negatives[: len(present)] == present  # None only at the end
        short += len(present) < k
        assert len(set(present)) == len(present)
        for negative in present:
            assert negative not in excluded, "a labelled positive was mined as a negative"
            assert qualifies(score_of[negative]), (row["anchor"], negative, score_of[negative], positive)
            assert rank_of[negative] >= min_rank
        ranks = [rank_of[n] for n in present]
        in_range = [r for r in ranks if r < max_rank]
        beyond = [r for r in ranks if r >= max_rank]
        if beyond:
            filled += 1
            surely_qualifying = [r for r, (_, s) in enumerate(ranking) if min_rank <= r < max_rank
                                 and qualifies(s + 2 * tolerance)]
            assert len(surely_qualifying) <= len(in_range), "filled beyond max_rank while the range had enough"
        if top:
            # The k best qualifying ranks from min_rank on. Scores within the tolerance of a threshold or
            # of each other may go either way between float32 search and the float64 oracle.
            assert ranks == sorted(ranks)
            last_score = ranking[ranks[-1]][1] if ranks else -np.inf
            skipped = [r for r, (_, s) in enumerate(ranking) if r >= min_rank and r not in ranks
                       and qualifies(s + 2 * tolerance) and s > last_score + tolerance]
            assert not skipped, f"better qualifying negatives at ranks {skipped} were skipped"
            if len(ranks) < k:  # short: nothing else qualifies anywhere below min_rank
                others = [r for r, (_, s) in enumerate(ranking) if r >= min_rank and r not in ranks
                          and qualifies(s + 2 * tolerance)]
                assert not others, f"row short of negatives while ranks {others} qualify"
    assert (stats.rows_filled, stats.rows_short) == (filled, short)
    return filled, short


# ---------------------------------------------------------------------------------------------------
# Synthetic data: fast, every rule and the fill / short paths.
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    corpus = [f"doc {i}" for i in range(60)]
    anchors = [f"query {i}" for i in range(12)]
    embeddings = {text: rng.normal(size=8).astype(np.float32) for text in corpus + anchors}
    rows = {"anchor": [], "positive": []}
    for i, anchor in enumerate(anchors):
        for j in range(1 + i % 3):  # up to 3 labelled positives per anchor
            rows["anchor"].append(anchor)
            rows["positive"].append(corpus[(5 * i + j) % 60])
    return datasets.Dataset.from_dict(rows), corpus, embeddings


@pytest.mark.parametrize(
    ("rank_range", "margin", "relative_margin"),
    [((0, 100), None, None), ((2, 10), 0.05, None), ((0, 8), None, 0.1), ((3, 6), 0.0, 0.2)],
)
def test_top_sampling_follows_the_rules(synthetic, rank_range, margin, relative_margin):
    dataset, corpus, embeddings = synthetic
    result, stats = mine_hard_negatives(
        dataset, LookupModel(embeddings), corpus, num_negatives=3, range=rank_range, margin=margin,
        relative_margin=relative_margin, return_stats=True, verbose=False,
    )
    assert len(result) == len(dataset) and result["anchor"] == dataset["anchor"]
    check_rules(result, stats, embeddings, corpus, 3, rank_range, margin, relative_margin)


def test_rows_without_enough_negatives_in_range_are_filled_from_further_down(synthetic):
    dataset, corpus, embeddings = synthetic
    result, stats = mine_hard_negatives(
        dataset, LookupModel(embeddings), corpus, num_negatives=4, range=(1, 5), margin=0.1,
        return_stats=True, verbose=False,
    )
    filled, _ = check_rules(result, stats, embeddings, corpus, 4, (1, 5), margin=0.1)
    assert filled > 0


def test_rows_short_of_negatives_keep_none_columns_and_are_counted(synthetic, capsys):
    dataset, corpus, embeddings = synthetic
    small_corpus = sorted(set(dataset["positive"])) + corpus[:3]  # "doc 0" twice: merged
    result, stats = mine_hard_negatives(
        dataset, LookupModel(embeddings), small_corpus, num_negatives=5, range=(0, 2), margin=0.3,
        return_stats=True,
    )
    assert len(result) == len(dataset)
    _, short = check_rules(result, stats, embeddings, small_corpus, 5, (0, 2), margin=0.3)
    assert short > 0 and stats.negatives_missing >= short
    printed = capsys.readouterr().out
    assert f"fewer than 5 negatives (None columns): {short}" in printed
    assert "positive scores: count" in printed and "rows filled from beyond max_rank" in printed


def test_triplet_format_writes_one_row_per_negative_and_keeps_rows_without_any(synthetic):
    dataset, corpus, embeddings = synthetic
    small_corpus = sorted(set(dataset["positive"])) + corpus[:3]
    options = {"num_negatives": 5, "range": (0, 2), "margin": 0.3, "verbose": False}
    tuples = mine_hard_negatives(dataset, LookupModel(embeddings), small_corpus, **options)
    triplets = mine_hard_negatives(dataset, LookupModel(embeddings), small_corpus, output_format="triplet", **options)
    assert triplets.column_names == [*dataset.column_names, "negative"]
    expected = []
    for row in tuples:
        found = [row[f"negative_{j}"] for j in range(1, 6) if row[f"negative_{j}"] is not None]
        expected += [(row["anchor"], row["positive"], negative) for negative in found or [None]]
    assert [(row["anchor"], row["positive"], row["negative"]) for row in triplets] == expected
    assert len(triplets) > len(dataset)  # several negatives per row
    without_any = sum(row["negative_1"] is None for row in tuples)
    assert without_any > 0 and sum(row["negative"] is None for row in triplets) == without_any  # kept once
    with pytest.raises(ValueError, match="output_format must be one of"):
        mine_hard_negatives(dataset, LookupModel(embeddings), corpus, output_format="triplets")


def test_random_sampling_stays_in_range_and_is_seeded(synthetic):
    dataset, corpus, embeddings = synthetic
    def mine(seed):
        return mine_hard_negatives(
            dataset, LookupModel(embeddings), corpus, num_negatives=2, range=(2, 20), sampling="random",
            margin=0.0, seed=seed, return_stats=True, verbose=False,
        )

    (first, stats), (again, _), (other, _) = mine(0), mine(0), mine(1)
    check_rules(first, stats, embeddings, corpus, 2, (2, 20), margin=0.0, top=False)
    assert first["negative_1"] == again["negative_1"]
    assert first["negative_1"] != other["negative_1"]


def test_faiss_search_matches_exact_search(synthetic):
    pytest.importorskip("faiss")
    dataset, corpus, embeddings = synthetic
    kwargs = {"num_negatives": 3, "range": (1, 30), "margin": 0.02, "verbose": False}
    exact = mine_hard_negatives(dataset, LookupModel(embeddings), corpus, **kwargs)
    with_faiss = mine_hard_negatives(dataset, LookupModel(embeddings), corpus, use_faiss=True, **kwargs)
    assert exact.to_dict() == with_faiss.to_dict()


def test_embeddings_are_cached(synthetic, tmp_path):
    dataset, corpus, embeddings = synthetic
    first, second = LookupModel(embeddings), LookupModel(embeddings)
    a = mine_hard_negatives(dataset, first, corpus, cache_dir=tmp_path, model_id="m", verbose=False)
    b = mine_hard_negatives(dataset, second, corpus, cache_dir=tmp_path, model_id="m", verbose=False)
    assert first.encoded == len(corpus) + len(set(dataset["anchor"])) and second.encoded == 0
    assert a.to_dict() == b.to_dict()
    third = LookupModel(embeddings)
    mine_hard_negatives(dataset, third, corpus, cache_dir=tmp_path, model_id="other", verbose=False)
    assert third.encoded > 0


def test_default_corpus_is_the_positives_and_arguments_are_checked(synthetic):
    dataset, _, embeddings = synthetic
    result = mine_hard_negatives(dataset, LookupModel(embeddings), num_negatives=1, verbose=False)
    assert set(result["negative_1"]) <= set(dataset["positive"])
    model = LookupModel(embeddings)
    with pytest.raises(ValueError, match="range must satisfy"):
        mine_hard_negatives(dataset, model, range=(5, 5))
    with pytest.raises(ValueError, match="positives are not in corpus"):
        mine_hard_negatives(dataset, model, corpus=["doc 59"])
    with pytest.raises(ValueError, match="anchor_column 'question' is not a column"):
        mine_hard_negatives(dataset, model, anchor_column="question")
    with pytest.raises(ValueError, match="sampling must be one of"):
        mine_hard_negatives(dataset, model, sampling="hardest")


@pytest.mark.parametrize(("rows", "error", "message"), [
    ({"anchor": ["q", "r"], "positive": ["p", None]}, TypeError,
     r"dataset\[1\], column 'positive': expected a string, got NoneType \(None\)"),
    ({"anchor": ["q", " "], "positive": ["p", "s"]}, ValueError,
     r"dataset\[1\], column 'anchor': empty or whitespace-only text"),
    ({"anchor": ["q"], "positive": [3]}, ValueError, r"dataset: column 'positive' holds numbers \(3\), not texts"),
    ({"anchor": [], "positive": []}, ValueError, r"dataset: the dataset is empty"),
    ({"text": ["q"]}, ValueError, r"dataset needs an anchor and a positive column, has \['text'\]"),
])
def test_rows_that_cannot_be_mined_are_named_before_encoding(rows, error, message):
    """A None positive used to be a traceback from deep inside (issue #15, class 6); now each is named by
    source, row (file line, or index of an in-memory data set) and column, as the trainer names them, before the model encodes anything."""
    model = LookupModel({})
    with pytest.raises(error, match=message):
        mine_hard_negatives(datasets.Dataset.from_dict(rows), model, verbose=False)
    assert model.encoded == 0


def test_a_model_that_embeds_nan_is_refused(synthetic):
    dataset, corpus, embeddings = synthetic
    broken = {**embeddings, corpus[3]: np.full_like(embeddings[corpus[3]], np.nan)}
    with pytest.raises(ValueError, match=rf"the model embedded the corpus text '{corpus[3]}' as NaN or infinite"):
        mine_hard_negatives(dataset, LookupModel(broken), corpus, verbose=False)


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(path.read_bytes()[:100]),  # truncated
    lambda path: path.write_bytes(b""),  # empty
    lambda path: np.save(path, np.zeros((2, 3), np.float32)),  # another number of rows
    lambda path: np.save(path, np.full((len(np.load(path)), np.load(path).shape[1]), np.nan, np.float32)),
])
def test_a_damaged_cache_file_is_encoded_again_with_a_warning(synthetic, tmp_path, damage):
    dataset, corpus, embeddings = synthetic
    want = mine_hard_negatives(dataset, LookupModel(embeddings), corpus, cache_dir=tmp_path, verbose=False)
    for path in tmp_path.glob("embeddings-*.npy"):
        damage(path)
    model = LookupModel(embeddings)
    with pytest.warns(UserWarning, match=r"embedding cache .*embeddings-.*\.npy .*: encoding again and replacing it"):
        got = mine_hard_negatives(dataset, model, corpus, cache_dir=tmp_path, verbose=False)
    assert got.to_dict() == want.to_dict() and model.encoded > 0
    model = LookupModel(embeddings)
    mine_hard_negatives(dataset, model, corpus, cache_dir=tmp_path, verbose=False)
    assert model.encoded == 0  # replaced: read from the cache again


# ---------------------------------------------------------------------------------------------------
# SciFact train with all-MiniLM-L6-v2: the real thing, encoded once.
# ---------------------------------------------------------------------------------------------------


def load_scifact_train(folder):
    corpus = {}
    with open(folder / "corpus.jsonl") as f:
        for line in f:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc['title']} {doc['text']}".strip()
    with open(folder / "queries.jsonl") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    rows = {"anchor": [], "positive": []}
    with open(folder / "qrels" / "train.tsv") as f:
        for qrel in csv.DictReader(f, delimiter="\t"):
            if int(qrel["score"]) > 0:
                rows["anchor"].append(queries[qrel["query-id"]])
                rows["positive"].append(corpus[qrel["corpus-id"]])
    return datasets.Dataset.from_dict(rows), list(corpus.values())


@pytest.fixture(scope="session")
def scifact_mined(data_dir, minilm, tmp_path_factory):
    dataset, corpus = load_scifact_train(data_dir / "beir_scifact")
    # `minilm` is the session's disk-cached all-MiniLM-L6-v2: the retrieval tests encode the same corpus.
    model = RecordingModel(minilm)
    cache = tmp_path_factory.mktemp("mining-cache")
    result, stats = mine_hard_negatives(
        dataset, model, corpus, num_negatives=5, range=(10, 50), relative_margin=0.05, batch_size=64,
        cache_dir=cache, model_id="all-MiniLM-L6-v2", return_stats=True,
    )
    return dataset, corpus, model, cache, result, stats


@pytest.mark.slow
def test_scifact_train_mining_follows_the_rules(scifact_mined):
    dataset, corpus, model, _, result, stats = scifact_mined
    assert len(result) == len(dataset) == 919
    check_rules(result, stats, model.embeddings, corpus, 5, (10, 50), relative_margin=0.05)
    assert stats.rows_short == 0
    assert 0.0 < stats.negative_scores["max"] and stats.negative_scores["mean"] < stats.positive_scores["mean"]


@pytest.mark.slow
def test_scifact_train_absolute_margin_and_random_sampling_reuse_the_cache(scifact_mined):
    dataset, corpus, model, cache, _, _ = scifact_mined
    before = model.encoded
    result, stats = mine_hard_negatives(
        dataset, model, corpus, num_negatives=3, range=(0, 30), margin=0.1, sampling="random",
        cache_dir=cache, model_id="all-MiniLM-L6-v2", return_stats=True, use_faiss=True,
    )
    assert model.encoded == before  # both embedding sets came from the cache
    check_rules(result, stats, model.embeddings, corpus, 3, (0, 30), margin=0.1, top=False)
