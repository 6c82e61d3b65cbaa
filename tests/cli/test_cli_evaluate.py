"""The ``contrasent evaluate`` command: tables, JSON, and clear errors on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import contrasent
from contrasent.cli import main
from contrasent.evaluation.sts_data import SENTEVAL_STS_SUBSETS

PAIRS = [("a b", "a b", "5.0"), ("a b", "a c", "2.5"), ("c d", "e f", "0.5"), ("a a", "a b", "4")]


def write_sts_layout(root: Path) -> Path:
    """A miniature of ``../shared/data``'s STS layout (SentEval copies), 4 pairs a file."""
    for year, subsets in SENTEVAL_STS_SUBSETS.items():
        folder = root / "senteval_sts" / "senteval_tokenized" / f"{year}-en-test"
        folder.mkdir(parents=True)
        for subset in subsets:
            (folder / f"STS.input.{subset}.txt").write_text("".join(f"{a}\t{b}\n" for a, b, _ in PAIRS))
            (folder / f"STS.gs.{subset}.txt").write_text("".join(f"{s}\n" for *_, s in PAIRS))
    stsb = root / "stsbenchmark" / "senteval_tokenized"
    stsb.mkdir(parents=True)
    (stsb / "sts-test.csv").write_text(
        "".join(f"g\tf\ty\t{i}\t{s}\t{a}\t{b}\n" for i, (a, b, s) in enumerate(PAIRS))
    )
    sick = root / "sick" / "senteval_tokenized"
    sick.mkdir(parents=True)
    header = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n"
    rows = "".join(f"{i}\t{a}\t{b}\t{s}\tNEUTRAL\r\n" for i, (a, b, s) in enumerate(PAIRS))
    (sick / "SICK_test_annotated.txt").write_text(header + rows)
    return root


def write_beir(root: Path, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n") -> Path:
    root.mkdir(parents=True)
    docs = [{"_id": "d1", "title": "a", "text": "b"}, {"_id": "d2", "title": "", "text": "c d"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "q1", "text": "a b"}, {"_id": "q2", "text": "e f"}, {"_id": "q3", "text": "unjudged"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


class BagOfLetters:
    """A stand-in model: counts of the letters a-f, so similarities are easy to reason about."""

    @classmethod
    def from_pretrained(cls, name: str) -> BagOfLetters:
        assert name == "some/model"
        return cls()

    def encode(
        self, texts: list[str], batch_size: int = 32, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        return np.array([[t.count(c) + 0.1 for c in "abcdef"] for t in texts], dtype=np.float32)


def test_evaluate_prints_tables_and_writes_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("contrasent.models.encoder.SentenceEncoder", BagOfLetters)
    data = write_sts_layout(tmp_path / "data")
    beir = write_beir(tmp_path / "toy")
    output = tmp_path / "out" / "results.json"
    status = main(["evaluate", "some/model", "--sts", str(data), "--retrieval", str(beir), "--k", "1", "2",
                   "--output", str(output), "--no-progress"])  # fmt: skip
    assert status == 0
    printed = " ".join(capsys.readouterr().out.split(" "))
    assert "| STS12 | STS13 | STS14 | STS15 | STS16 | STS-B | SICK-R | Avg. |" in " ".join(printed.split())
    assert "| nDCG" in printed and "2 queries, 2 documents" in printed
    results = json.loads(output.read_text())
    assert list(results) == ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "avg", "toy"]
    assert results["STS12"]["spearman"] == pytest.approx(results["STS-B"]["spearman"])  # same pairs, pooled
    assert results["toy"]["ndcg@1"] == 1.0  # "a b" -> d1 ("a b"), "e f" -> d2 ("c d") rather than d1
    assert set(results["toy"]) == {
        f"{m}@{k}" for m in ("ndcg", "mrr", "recall", "map", "precision") for k in (1, 2)
    }


@pytest.mark.parametrize(
    ("make_args", "status", "message"),
    [
        (
            lambda tmp: ["--retrieval", str(write_beir(tmp / "toy")), "--split", "dev"],
            1,
            "no qrels for split 'dev'",
        ),
        (lambda tmp: ["--sts", str(tmp / "absent")], 1, "STS folder not found"),
        (
            lambda tmp: [
                "--retrieval",
                str(write_beir(tmp / "toy", "query-id\tcorpus-id\tscore\nq1\td9\t1\n")),
            ],
            1,
            "document id 'd9' is not in the corpus",
        ),
        (lambda tmp: [], 2, "nothing to evaluate"),
    ],
)
def test_evaluate_reports_bad_input_before_loading_the_model(tmp_path, capsys, make_args, status, message):
    """A bad file is exit status 1, a command line that asks for nothing 2; either way one line, and
    before the model (here one that does not exist) is loaded."""
    assert main(["evaluate", "not/loaded", *make_args(tmp_path)]) == status
    err = capsys.readouterr().err
    assert err.startswith("contrasent evaluate: error: ") and message in err and err.count("\n") == 1


def test_cli_import_is_light():
    code = (
        "import sys, contrasent.cli; print(any(m in sys.modules for m in ('torch', 'transformers', 'numpy')))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(contrasent.__file__).parents[1])}  # this checkout's package
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_evaluate_with_a_real_model(tmp_path, minilm_dir, capsys):
    """The real path: SentenceEncoder.from_pretrained on all-MiniLM-L6-v2, on miniature data."""
    data = write_sts_layout(tmp_path / "data")
    beir = write_beir(tmp_path / "toy")
    output = tmp_path / "results.json"
    args = [
        "evaluate",
        str(minilm_dir),
        "--sts",
        str(data),
        "--retrieval",
        str(beir),
        "--output",
        str(output),
    ]
    assert main([*args, "--no-progress"]) == 0
    results = json.loads(output.read_text())
    assert results["STS-B"]["spearman"] > 50  # "a b"/"a b" most similar, "c d"/"e f" least
    assert results["toy"]["recall@100"] == 1.0


def test_tasks_are_chosen_printed_and_saved_one_by_one(tmp_path, monkeypatch, capsys):
    """--tasks runs a subset (MTEB's names accepted); each task is printed and saved as soon as it ends,
    so a long run shows progress and a stopped one keeps what it measured."""
    monkeypatch.setattr("contrasent.models.encoder.SentenceEncoder", BagOfLetters)
    data = write_sts_layout(tmp_path / "data")
    output = tmp_path / "results.json"
    import contrasent.evaluation

    saved_after_each_task = []
    real_save = contrasent.evaluation.save_results

    def recording_save(results, path):
        saved_after_each_task.append(list(results))
        real_save(results, path)

    monkeypatch.setattr(contrasent.evaluation, "save_results", recording_save)
    status = main(["evaluate", "some/model", "--sts", str(data), "--tasks", "STSBenchmark", "sick-r",
                   "--output", str(output), "--no-progress"])
    assert status == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.index("STS-B: Spearman") < out.index("SICK-R: Spearman") < out.index("| STS-B | SICK-R | Avg. |")
    assert "STS12" not in out
    assert saved_after_each_task[:2] == [["STS-B"], ["STS-B", "SICK-R"]]
    assert list(json.loads(output.read_text())) == ["STS-B", "SICK-R", "avg"]


def test_an_unknown_task_is_named(tmp_path, capsys):
    data = write_sts_layout(tmp_path / "data")
    assert main(["evaluate", "not/loaded", "--sts", str(data), "--tasks", "STS17"]) == 1
    assert "unknown STS task 'STS17'; the tasks are STS12, STS13" in capsys.readouterr().err


def test_encoding_shows_a_progress_bar_counting_texts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("contrasent.models.encoder.SentenceEncoder", BagOfLetters)
    data = write_sts_layout(tmp_path / "data")
    assert main(["evaluate", "some/model", "--sts", str(data), "--tasks", "STS-B"]) == 0
    bar = capsys.readouterr().err
    assert "Encoding STS-B" in bar and "text/s" in bar and "5/5" in bar  # 5 distinct sentences of 4 pairs


def test_evaluate_prompt_and_truncate_dim_flags(tmp_path, tiny_bert_dir, monkeypatch, capsys):
    from contrasent.evaluation import RetrievalEvaluator

    seen = {}
    original = RetrievalEvaluator.__init__

    def record(self, data, **options):
        seen.update(options)
        original(self, data, **options)

    monkeypatch.setattr(RetrievalEvaluator, "__init__", record)
    beir = write_beir(tmp_path / "toy")
    args = ["evaluate", str(tiny_bert_dir), "--retrieval", str(beir), "--no-progress",
            "--query-prompt", "query: ", "--document-prompt-name", "document"]
    assert main(args) == 1  # the tiny model has no prompt named "document"
    assert "prompt_name 'document' is not one of this model's prompts" in capsys.readouterr().err
    assert seen["query_prompt"] == "query: " and seen["document_prompt_name"] == "document"
    assert main([*args[:5], "--truncate-dim", "8"]) == 0
    assert main([*args[:5], "--truncate-dim", "64"]) == 1
    assert "truncate_dim must be in 1..32 (the model's embedding dimension), got 64" in capsys.readouterr().err
