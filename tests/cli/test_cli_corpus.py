"""One corpus file, three commands: ``contrasent search``, ``contrasent mine --corpus`` and ``contrasent
evaluate --retrieval`` must embed the same texts (BEIR's ``(title + " " + text).strip()``), so that a
document scores the same whichever command looks at it."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from contrasent.cli import main
from contrasent.models.encoder import SentenceEncoder

DOCUMENTS = [
    {"_id": "d1", "title": "Cells", "text": "Mitochondria make most of the energy. "},
    {"_id": "d2", "title": "", "text": "  Stocks fell sharply today."},
    {"_id": "d3", "title": " Space ", "text": "The rocket launched at dawn.\t"},
    {"_id": "d4", "text": "\nA document without a title field.\n"},
]
# BEIR's rule, by hand: leading/trailing whitespace of the joined text goes, inner whitespace stays
JOINED = {
    "Cells Mitochondria make most of the energy.",
    "Stocks fell sharply today.",
    "Space  The rocket launched at dawn.",
    "A document without a title field.",
}
QUERIES = {"q1": "energy in cells", "q2": "stock market news"}
POSITIVES = {"q1": "Cells Mitochondria make most of the energy.", "q2": "Stocks fell sharply today."}


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCUMENTS), encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": text}) + "\n" for q, text in QUERIES.items()), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return folder


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """Every text SentenceEncoder.encode is given -> its L2-normalized embedding (the commands normalize at
    different places: the index asks the encoder, mining and evaluation normalize afterwards)."""
    seen: dict[str, np.ndarray] = {}
    original = SentenceEncoder.encode

    @functools.wraps(original)  # keeps the signature, which the callers inspect
    def encode(self, texts, *args, **kwargs):
        output = original(self, texts, *args, **kwargs)
        vectors = np.asarray(output, dtype=np.float64)
        for text, vector in zip([texts] if isinstance(texts, str) else texts, vectors):
            seen[text] = vector / np.linalg.norm(vector)
        return output

    monkeypatch.setattr(SentenceEncoder, "encode", encode)
    return seen


def corpus_texts(seen: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a command embedded, less the queries."""
    return {text: vector for text, vector in seen.items() if text not in QUERIES.values()}


def test_search_mine_and_evaluate_embed_a_corpus_alike(tiny_bert_dir, beir_folder, tmp_path, embedded, capsys):
    corpus, model = str(beir_folder / "corpus.jsonl"), str(tiny_bert_dir)
    runs = {}
    assert main(["search", model, "--corpus", corpus, *QUERIES.values()]) == 0
    runs["search"] = corpus_texts(embedded)

    embedded.clear()
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"anchor": QUERIES[q], "positive": POSITIVES[q]}) + "\n" for q in QUERIES))
    assert main(["mine", str(data), "--model", model, "--corpus", corpus, "--output", str(tmp_path / "out.jsonl"),
                 "--num-negatives", "1", "--range", "0", "3"]) == 0
    runs["mine"] = corpus_texts(embedded)

    embedded.clear()
    assert main(["evaluate", model, "--retrieval", str(beir_folder), "--k", "1", "--no-progress"]) == 0
    runs["evaluate"] = corpus_texts(embedded)
    capsys.readouterr()

    for command, texts in runs.items():
        assert set(texts) == JOINED, command
    for text in JOINED:
        np.testing.assert_allclose(runs["search"][text], runs["mine"][text], atol=1e-5, err_msg=text)
        np.testing.assert_allclose(runs["search"][text], runs["evaluate"][text], atol=1e-5, err_msg=text)
