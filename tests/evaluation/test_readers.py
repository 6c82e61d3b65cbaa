"""Readers on the real files of ../shared/data (their traps) and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contrasent.evaluation import (
    DataFormatError,
    read_beir,
    read_sick,
    read_sts_subset,
    read_sts_year,
    read_stsb,
    retrieval_from_datasets,
    sts_from_dataset,
)

SCORED_PAIRS = {"STS12": 3108, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186}


@pytest.mark.parametrize("variant", ["raw", "senteval_tokenized"])
def test_sts_years_count_the_scored_pairs_only(data_dir, variant):
    for year, expected in SCORED_PAIRS.items():
        subsets = read_sts_year(data_dir / "senteval_sts" / variant / f"{year}-en-test")
        assert sum(len(s) for s in subsets.values()) == expected, year
    sts16 = read_sts_year(data_dir / "senteval_sts" / variant / "STS16-en-test")
    assert sum(s.n_unscored for s in sts16.values()) == 7997
    # STS16 raw inputs carry two source fields: only the sentences are read
    assert all("Europe Media Monitor" not in text for text in sts16["headlines"].sentences2)


def test_stsb_rows_with_nine_fields_and_quotes(data_dir):
    test = read_stsb(data_dir / "stsbenchmark" / "sts-test.csv")
    assert len(test) == 1379
    row = 625  # line 626 has 9 fields and a trailing space in its sentences
    assert test.sentences1[row] == (
        "I remained under the banyan tree, exhausted by my daily ritual of dragooning the men every two hours."
    )
    assert test.scores[row] == 3.0
    assert test.sentences1[407] == 'A young boy jumping into a pool that says "no diving".'  # quotes are text
    tokenized = read_stsb(data_dir / "stsbenchmark" / "senteval_tokenized" / "sts-test.csv")
    assert tokenized.scores == test.scores
    assert tokenized.sentences1[0] == "a girl is styling her hair ."
    assert [len(read_stsb(data_dir / "stsbenchmark" / f"sts-{s}.csv")) for s in ("train", "dev")] == [
        5749,
        1500,
    ]


def test_sick_files_with_crlf_and_the_full_release(data_dir):
    test = read_sick(data_dir / "sick" / "senteval_tokenized" / "SICK_test_annotated.txt")  # CRLF
    assert len(test) == 4927 and test.scores[0] == 3.3
    assert not any("\r" in s for s in test.sentences2)
    assert len(read_sick(data_dir / "sick" / "raw" / "SICK_trial.txt")) == 500
    full = read_sick(data_dir / "sick" / "SICK_full_release.txt")  # other column order, CRLF
    assert len(full) == 9840 and full.scores[0] == 4.5


def test_beir_folders(data_dir):
    scifact = read_beir(data_dir / "beir_scifact")
    assert (len(scifact.corpus), len(scifact.queries), sum(map(len, scifact.qrels.values()))) == (
        5183,
        300,
        339,
    )
    train = read_beir(data_dir / "beir_scifact", split="train")
    assert len(train.queries) == 809
    msmarco = read_beir(data_dir / "msmarco_trecdl19_subset")
    assert len(msmarco.queries) == 43 and {s for q in msmarco.qrels.values() for s in q.values()} == {1, 2, 3}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_sts_subset_errors_name_file_and_line(tmp_path):
    inputs = write(tmp_path / "STS.input.x.txt", "a\tb\nc\td\n\te\n")
    with pytest.raises(DataFormatError, match=r"STS.gs.x.txt has 2 lines but .*STS.input.x.txt has 3"):
        read_sts_subset(inputs, write(tmp_path / "STS.gs.x.txt", "1\n2\n"))
    with pytest.raises(DataFormatError, match=r"STS.input.x.txt, line 3: sentence1 is empty"):
        read_sts_subset(inputs, write(tmp_path / "STS.gs.x.txt", "1\n2\n3\n"))
    # the same empty sentence on an unscored pair is skipped, as SentEval skips the pair
    data = read_sts_subset(inputs, write(tmp_path / "STS.gs.x.txt", "1\n2\n\n"))
    assert (data.sentences1, data.scores, data.n_unscored) == (["a", "c"], [1.0, 2.0], 1)
    with pytest.raises(DataFormatError, match=r"STS.gs.x.txt, line 2: expected the gold score as a number"):
        read_sts_subset(inputs, write(tmp_path / "STS.gs.x.txt", "1\nhigh\n\n"))
    with pytest.raises(FileNotFoundError, match="STS.gs.y.txt: file not found"):
        read_sts_subset(inputs, tmp_path / "STS.gs.y.txt")


def test_stsb_and_sick_errors(tmp_path):
    with pytest.raises(DataFormatError, match=r"sts-test.csv, line 2: expected at least 7"):
        read_stsb(write(tmp_path / "sts-test.csv", "g\tf\ty\t1\t2.0\ta\tb\ng\tf\ty\t2\t3.0\ta\n"))
    with pytest.raises(DataFormatError, match=r"line 1: expected a header with column 'relatedness_score'"):
        read_sick(write(tmp_path / "SICK.txt", "pair_ID\tsentence_A\tsentence_B\n1\ta\tb\n"))


def write_beir(
    root: Path, corpus=None, queries=None, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\n"
) -> Path:
    corpus = (
        corpus
        if corpus is not None
        else [{"_id": "d1", "title": "t", "text": "x"}, {"_id": "d2", "text": "y"}]
    )
    queries = (
        queries if queries is not None else [{"_id": "q1", "text": "query one"}, {"_id": "q2", "text": "two"}]
    )
    write(root / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in corpus))
    write(root / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
    write(root / "qrels" / "test.tsv", qrels)
    return root


def test_beir_keeps_only_judged_queries_and_joins_title(tmp_path):
    data = read_beir(write_beir(tmp_path / "toy"))
    assert data.queries == {"q1": "query one"}  # q2 has no judgment in the split: dropped, as BEIR does
    assert data.corpus["d1"].joined() == "t x" and data.corpus["d2"].joined() == "y"
    assert data.name == "toy" and data.split == "test"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"qrels": "query-id\tcorpus-id\tscore\nq9\td1\t1\n"}, DataFormatError,
         r"test.tsv, line 2: query id 'q9' is not in the queries"),
        ({"qrels": "query-id\tcorpus-id\tscore\nq1\td9\t1\n"}, DataFormatError,
         r"test.tsv, line 2: document id 'd9' is not in the corpus"),
        ({"qrels": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n"}, DataFormatError,
         r"line 3: conflicting relevance for query 'q1', document 'd1': 1 and 2"),
        ({"qrels": "query-id\tcorpus-id\tscore\nq1\td1\tyes\n"}, DataFormatError,
         r"line 2: expected an integer relevance score, got 'yes'"),
        ({"corpus": [{"_id": "d1", "text": "x"}, {"_id": "d1", "text": "y"}]}, DataFormatError,
         r"corpus.jsonl, line 2: duplicate document id 'd1' \(first at .*corpus.jsonl, line 1\)"),
        ({"corpus": [{"_id": "d1", "title": "x"}]}, DataFormatError, r"corpus.jsonl, line 1: missing field 'text'"),
        ({"queries": [{"_id": "q1", "text": "  "}]}, DataFormatError, r"query 'q1' has an empty text"),
    ],
)  # fmt: skip
def test_beir_errors(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        read_beir(write_beir(tmp_path / "toy", **kwargs))


def test_beir_missing_split_and_files(tmp_path):
    root = write_beir(tmp_path / "toy")
    with pytest.raises(FileNotFoundError, match=r"no qrels for split 'dev'; available splits: \['test'\]"):
        read_beir(root, split="dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="queries.jsonl: file not found"):
        read_beir(root)
    with pytest.raises(FileNotFoundError, match="BEIR folder not found"):
        read_beir(tmp_path / "absent")
    write(root / "queries.jsonl", '{"_id": "q1", "text": "a"}\n{"_id": "q2", \n')
    with pytest.raises(DataFormatError, match=r"queries.jsonl, line 2: not valid JSON"):
        read_beir(root)


def test_beir_missing_documents_and_empty_documents_are_counted_on_request(tmp_path, caplog):
    root = write_beir(
        tmp_path / "toy",
        corpus=[{"_id": "d1", "title": "", "text": " "}, {"_id": "d2", "text": "y"}],
        qrels="query-id\tcorpus-id\tscore\nq1\td9\t1\nq1\td2\t1\n",
    )
    data = read_beir(root, allow_missing_documents=True)
    assert data.qrels == {"q1": {"d9": 1, "d2": 1}}  # kept: counts against recall, as in BEIR
    assert data.notes == [
        "1 judgments name documents absent from the corpus",
        "1 documents have an empty title and text",
    ]
    assert "1 documents have an empty title and text" in caplog.text


def test_from_datasets_objects():
    datasets = pytest.importorskip("datasets")
    sts = datasets.Dataset.from_dict(
        {"sentence1": ["a  b", "c"], "sentence2": ["d", "e"], "score": [0.2, 0.8]}
    )
    data = sts_from_dataset(sts, name="stsb")
    assert (data.sentences1, data.scores) == (["a b", "c"], [0.2, 0.8])
    sick = datasets.Dataset.from_dict(
        {"sentence_A": ["a", "b"], "sentence_B": ["c", "d"], "relatedness_score": [1, 5]}
    )
    assert sts_from_dataset(sick).sentences2 == ["c", "d"]
    with pytest.raises(DataFormatError, match=r"no score column found among \['s', 't', 'u'\]"):
        sts_from_dataset(datasets.Dataset.from_dict({"s": ["a"], "t": ["b"], "u": [1]}), sentence1_column="s",
                         sentence2_column="t")  # fmt: skip
    corpus = datasets.Dataset.from_list([{"_id": "d1", "title": "t", "text": "x"}])
    queries = datasets.Dataset.from_list([{"_id": "q1", "text": "q"}])
    qrels = datasets.Dataset.from_list([{"query-id": "q1", "corpus-id": "d1", "score": 1}])
    data = retrieval_from_datasets(corpus, queries, qrels, name="mini")
    assert data.qrels == {"q1": {"d1": 1}} and data.corpus["d1"].joined() == "t x"
    bad_qrels = datasets.Dataset.from_list([{"query-id": "q1", "corpus-id": "d7", "score": 1}])
    with pytest.raises(DataFormatError, match=r"mini qrels, row 0: document id 'd7' is not in the corpus"):
        retrieval_from_datasets(corpus, queries, bad_qrels, name="mini")
