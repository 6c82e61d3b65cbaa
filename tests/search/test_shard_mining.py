"""Mining from a folder of corpus shards (`corpus_embeddings=`), block by block: the same rows as mining in
memory on the same data, whatever the query and corpus block sizes (blocks that split shards, a query block
of 1); shards of another model, prompt, truncate_dim or corpus refused with the file and the difference
named; memory that does not grow with the corpus nor the anchors; and 2 gloo processes mining (from shards
or in memory) what one process mines."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest

from contrasent.search.corpus_shards import encode_corpus
from contrasent.search.mining import mine_hard_negatives

DIM = 8


class HashModel:
    """What `encode_corpus` and mining need of a SentenceEncoder: one fixed vector per (prompt, text), seeded
    by its hash, whatever the batch (so shards and in-memory embeddings are the same bits)."""

    def __init__(self, salt: str = "", dim: int = DIM, truncate_dim: int | None = None, default_prompt: str = "") -> None:
        prompts = {"default": default_prompt} if default_prompt else {}
        self.config = SimpleNamespace(truncate_dim=truncate_dim, normalize=False, prompts=prompts,
                                      default_prompt_name="default" if default_prompt else None)
        self.prompts = {}
        self.salt, self.full_dim = salt, dim
        self.embedding_dim = truncate_dim or dim
        self.encoded = 0

    def encode(self, texts, batch_size=32, normalize=None, prompt=None, truncate_dim=None, show_progress_bar=False):
        self.encoded += len(texts)
        prompt = self.config.prompts.get(self.config.default_prompt_name, "") if prompt is None else prompt
        rows = np.stack([
            np.random.default_rng(list(hashlib.sha256(f"{self.salt}|{prompt}{text}".encode()).digest()[:8]))
            .normal(size=self.full_dim) for text in texts]).astype(np.float32)
        rows = rows[:, :truncate_dim or self.config.truncate_dim or self.full_dim]
        return rows / np.linalg.norm(rows, axis=1, keepdims=True) if normalize else rows


def synthetic_data(documents: int = 70, anchors: int = 15, seed: int = 0):
    """A corpus (repeated texts and an anchor among them) and (anchor, positive) rows, up to 3 per anchor."""
    rng = np.random.default_rng(seed)
    corpus = [f"doc {i}" for i in range(documents)]
    corpus[10] = corpus[3]  # a repeated text: searched once, at its first row
    corpus[20] = "query 2"  # an anchor in the corpus: never its own negative
    rows = {"anchor": [], "positive": []}
    for i in range(anchors):
        for _ in range(1 + i % 3):
            rows["anchor"].append(f"query {i}")
            rows["positive"].append(corpus[int(rng.integers(documents))])
    order = rng.permutation(len(rows["anchor"]))  # an anchor's rows scattered through the data
    return datasets.Dataset.from_dict({key: [values[i] for i in order] for key, values in rows.items()}), corpus


def write_corpus(folder: Path, texts: list[str]) -> Path:
    path = folder / "corpus.txt"
    path.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """(dataset, corpus texts, corpus file, shards folder of 9-row shards: 8 of them, the last one of 7)."""
    dataset, corpus = synthetic_data()
    folder = tmp_path_factory.mktemp("shard-mining")
    corpus_file = write_corpus(folder, corpus)
    encode_corpus(HashModel(), corpus_file, folder / "shards", shard_size=9, batch_size=4, show_progress_bar=False)
    return dataset, corpus, corpus_file, folder / "shards"


RULES = [
    {"num_negatives": 3, "range": (0, 100)},
    {"num_negatives": 4, "range": (1, 5), "margin": 0.1},  # rows filled from beyond max_rank
    {"num_negatives": 5, "range": (0, 2), "margin": 0.8},  # rows short of negatives
    {"num_negatives": 2, "range": (2, 20), "relative_margin": 0.1, "sampling": "random", "seed": 3},
    {"num_negatives": 2, "range": (0, None), "output_format": "triplet"},
]
BLOCKS = [(4096, None), (1, None), (4, 5), (3, 9), (2, 1000)]  # (query_block_size, corpus_block_size)


@pytest.mark.parametrize("rules", RULES)
def test_mining_from_shards_equals_mining_in_memory(shards, rules):
    dataset, corpus, corpus_file, folder = shards
    want, want_stats = mine_hard_negatives(dataset, HashModel(), corpus, verbose=False, return_stats=True, **rules)
    assert want_stats.rows_filled or want_stats.rows_short or rules["num_negatives"] < 4
    for query_block_size, corpus_block_size in BLOCKS:
        blocks = {"query_block_size": query_block_size, "corpus_block_size": corpus_block_size}
        in_memory = mine_hard_negatives(dataset, HashModel(), corpus, verbose=False, **blocks, **rules)
        assert in_memory.to_dict() == want.to_dict(), blocks
        model = HashModel()
        got, stats = mine_hard_negatives(dataset, model, corpus_file, corpus_embeddings=folder, verbose=False,
                                         return_stats=True, **blocks, **rules)
        assert got.to_dict() == want.to_dict(), blocks
        assert stats == want_stats, blocks
        assert model.encoded == len(set(dataset["anchor"])) + 3  # the anchors and the probe, never the corpus
    # the corpus as texts (no file to check the SHA-256 of) mines the same
    texts = mine_hard_negatives(dataset, HashModel(), corpus, corpus_embeddings=folder, verbose=False, **rules)
    assert texts.to_dict() == want.to_dict()


def test_faiss_mines_from_shards_what_numpy_mines(shards):
    pytest.importorskip("faiss")
    dataset, corpus, corpus_file, folder = shards
    rules = {"num_negatives": 3, "range": (1, 30), "margin": 0.02, "verbose": False}
    want = mine_hard_negatives(dataset, HashModel(), corpus, **rules)
    got = mine_hard_negatives(dataset, HashModel(), corpus_file, corpus_embeddings=folder, use_faiss=True,
                              query_block_size=4, corpus_block_size=5, **rules)
    assert got.to_dict() == want.to_dict()


def test_a_positive_outside_the_corpus_is_embedded(shards):
    """Its score is the cosine to its embedding; nothing else changes: the other rows mine what they mine
    without it, its row what it mines in memory beside its anchor's other rows with the text added."""
    dataset, corpus, corpus_file, folder = shards
    rows = dataset.to_dict()
    outside = "a positive that no corpus row holds"
    rows["positive"][4] = outside
    dataset = datasets.Dataset.from_dict(rows)
    options = {"num_negatives": 3, "range": (1, 10), "margin": 0.05, "verbose": False}
    with pytest.raises(ValueError, match="1 positives are not in corpus"):  # in memory: yours to add
        mine_hard_negatives(dataset, HashModel(), corpus, **options)
    model = HashModel()
    got = mine_hard_negatives(dataset, model, corpus_file, corpus_embeddings=folder, **options).to_list()
    others = [i for i in range(len(dataset)) if i != 4]
    assert [got[i] for i in others] == mine_hard_negatives(dataset.select(others), HashModel(), corpus, **options).to_list()
    same_anchor = [i for i in range(len(dataset)) if rows["anchor"][i] == rows["anchor"][4]]
    alone = mine_hard_negatives(dataset.select(same_anchor), HashModel(), [*corpus, outside], **options).to_list()
    assert got[4] == alone[same_anchor.index(4)]
    assert model.encoded == len(set(rows["anchor"])) + 3 + 1  # the anchors, the probe and the outside positive


def test_shards_of_another_model_settings_or_corpus_are_refused(shards, tmp_path):
    dataset, corpus, corpus_file, folder = shards
    manifest = folder / "manifest.json"

    def refused(message, model=None, corpus=corpus_file, shards=folder):
        with pytest.raises(ValueError, match=message):
            mine_hard_negatives(dataset, model or HashModel(), corpus, corpus_embeddings=shards, verbose=False)

    refused(rf"{manifest} was written with another model \(unnamed\): the mining's model embeds its probe "
            r"sentences differently \(cosine", HashModel(salt="other"))
    refused(rf"{manifest} was written with the document truncate_dim None, but mining embeds the anchors and "
            "documents with truncate_dim 4", HashModel(truncate_dim=4))
    refused(rf"{manifest} was written with the document prompt '', but mining embeds the anchors and documents "
            "with prompt 'passage: '", HashModel(default_prompt="passage: "))
    refused(rf"{manifest} holds 8-dimensional embeddings, but the mining's model gives 6-dimensional ones",
            HashModel(dim=6))
    shorter = write_corpus(tmp_path, corpus[:-1])
    refused(rf"corpus file {shorter} holds 69 texts, but {manifest} records 70 rows \(encoded from corpus.txt\)",
            corpus=shorter)
    refused(rf"the corpus holds 69 texts, but {manifest} records 70 rows", corpus=corpus[:-1])
    edited = write_corpus(tmp_path, [*corpus[:-1], "another text"])
    digest = hashlib.sha256(corpus_file.read_bytes()).hexdigest()
    refused(rf"corpus file {edited} is not the file the shards in {folder} were encoded from: its SHA-256 is "
            rf"\w{{12}}\.\.\., {manifest} records {digest[:12]}\.\.\. \(corpus.txt\)", corpus=edited)
    with pytest.raises(ValueError, match="corpus_embeddings needs the corpus they were encoded from"):
        mine_hard_negatives(dataset, HashModel(), corpus_embeddings=folder)
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    recorded = json.loads(manifest.read_text())
    (incomplete / "manifest.json").write_text(json.dumps({**recorded, "status": "incomplete", "shards": []}))
    refused(r"says the encoding is incomplete \(0 of 8 shards written\)", shards=incomplete)


def test_a_non_finite_shard_row_is_named(shards, tmp_path):
    dataset, _, corpus_file, _ = shards
    model = HashModel()

    class NanModel(HashModel):
        def encode(self, texts, **options):
            rows = model.encode(texts, **options)
            rows[[i for i, text in enumerate(texts) if text == "doc 12"]] = np.nan
            return rows

    encode_corpus(NanModel(), corpus_file, tmp_path / "shards", shard_size=9, show_progress_bar=False)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'shards' / 'embeddings-00001.npy'} holds NaN or infinite "
                                         r"values in the row of corpus text 12 \('doc 12'\)"):
        mine_hard_negatives(dataset, model, corpus_file, corpus_embeddings=tmp_path / "shards", verbose=False)


def traced_peak(dataset, corpus_file, folder) -> int:
    tracemalloc.start()
    try:
        mine_hard_negatives(dataset, HashModel(dim=1024), corpus_file, corpus_embeddings=folder, num_negatives=2,
                            range=(0, 10), query_block_size=8, corpus_block_size=200, verbose=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_with_neither_the_corpus_nor_the_queries(tmp_path):
    """numpy's allocations (traced) at 4x the corpus and 4x the anchors: the growth is the texts and the
    per-row results, far below the (documents, 1024) float32 matrix that mining in memory would hold, or
    the (anchors, 1024) one of the anchors' embeddings."""
    peaks = {}
    for documents, anchors in ((1500, 40), (6000, 40), (1500, 160)):
        dataset, corpus = synthetic_data(documents, anchors)
        folder = tmp_path / f"{documents}-{anchors}"
        folder.mkdir()
        corpus_file = write_corpus(folder, corpus)
        encode_corpus(HashModel(dim=1024), corpus_file, folder / "shards", shard_size=500, batch_size=500,
                      show_progress_bar=False)
        peaks[documents, anchors] = traced_peak(dataset, corpus_file, folder / "shards")
    assert peaks[6000, 40] - peaks[1500, 40] < 4500 * 1024 * 4 / 10, peaks
    assert peaks[1500, 160] - peaks[1500, 40] < 120 * 1024 * 4 / 2, peaks


# ---------------------------------------------------------------------------------------------------
# 2 gloo processes on CPU, each mining a contiguous part of the anchors.
# ---------------------------------------------------------------------------------------------------

WORLD = 2
DISTRIBUTED_RULES = [RULES[1], RULES[3], RULES[4]]


def worker(rank: int, init_file: str, corpus_file: str, folder: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=120))
    try:
        dataset, corpus = synthetic_data()
        results = []
        for rules in DISTRIBUTED_RULES:
            for query_block_size in (1, 4096):
                mined = mine_hard_negatives(dataset, HashModel(), corpus_file, corpus_embeddings=folder,
                                            query_block_size=query_block_size, corpus_block_size=4,
                                            verbose=False, **rules)
                results.append(mined.to_dict())
            in_memory = mine_hard_negatives(dataset, HashModel(), corpus, query_block_size=3, verbose=False, **rules)
            results.append(in_memory.to_dict())
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(results))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_processes_mine_what_one_process_mines(shards, tmp_path, spawn):
    dataset, _, corpus_file, folder = shards
    expected = []
    for rules in DISTRIBUTED_RULES:
        mined = mine_hard_negatives(dataset, HashModel(), corpus_file, corpus_embeddings=folder, verbose=False, **rules)
        expected += [mined.to_dict()] * 3
    spawn(worker, (str(tmp_path / "init"), str(corpus_file), str(folder), str(tmp_path)), WORLD)
    for rank in range(WORLD):  # every rank returns the whole data set
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == expected, rank
