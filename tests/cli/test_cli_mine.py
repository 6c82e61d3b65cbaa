"""``contrasent mine`` end to end with the tiny BERT: files in, a file with negative columns out."""

from __future__ import annotations

import json
import re

import datasets

from contrasent.cli import main


def test_mine_command_writes_negative_columns(tmp_path, tiny_bert_dir, capsys):
    rows = [{"anchor": f"question {i}", "positive": f"answer about topic {i}"} for i in range(6)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    corpus = tmp_path / "corpus.jsonl"
    extra = [{"title": "Extra", "text": f"unrelated passage {i}"} for i in range(10)]
    corpus.write_text("".join(json.dumps({"text": r["positive"]}) + "\n" for r in rows)
                      + "".join(json.dumps(r) + "\n" for r in extra))
    out = tmp_path / "mined.jsonl"
    code = main([
        "mine", str(data), "--model", str(tiny_bert_dir), "--output", str(out), "--corpus", str(corpus),
        "--num-negatives", "2", "--range", "0", "5", "--cache-dir", str(tmp_path / "cache"),
    ])
    assert code == 0
    mined = datasets.load_dataset("json", data_files=str(out), split="train")
    assert mined.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    for row in mined:
        assert row["positive"] not in (row["negative_1"], row["negative_2"])
    printed = capsys.readouterr().out
    assert "Mined 2 hard negatives for 6 rows" in printed and f"Wrote 6 rows to {out}" in printed
    assert list((tmp_path / "cache").glob("embeddings-*.npy"))


def test_mine_command_writes_triplets(tmp_path, tiny_bert_dir, capsys):
    rows = [{"anchor": f"question {i}", "positive": f"answer about topic {i}"} for i in range(4)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "mined.jsonl"
    assert main(["mine", str(data), "--model", str(tiny_bert_dir), "--output", str(out),
                 "--num-negatives", "2", "--output-format", "triplet"]) == 0
    mined = datasets.load_dataset("json", data_files=str(out), split="train")
    assert mined.column_names == ["anchor", "positive", "negative"] and len(mined) == 8
    assert mined["anchor"] == [row["anchor"] for row in rows for _ in range(2)]
    assert all(row["negative"] not in (None, row["positive"]) for row in mined)
    assert f"Wrote 8 rows to {out}" in capsys.readouterr().out


def test_mine_command_reports_a_missing_file(tmp_path, capsys):
    status = main(["mine", str(tmp_path / "missing.jsonl"), "--model", "m", "--output", str(tmp_path / "o.jsonl")])
    assert status == 1
    assert re.search(r"contrasent mine: error: training file .*missing.jsonl does not exist", capsys.readouterr().err)


def test_mine_command_reads_the_corpus_embeddings_from_shards(tmp_path, tiny_bert_dir, scifact_head, capsys):
    """`contrasent encode` then `contrasent mine --corpus-embeddings`: the rows mining in memory writes, the
    corpus never encoded again; shards of another corpus file refused before the model loads."""
    corpus = scifact_head(60)
    documents = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    rows = [{"anchor": f"what is known about {document['title'][:40]}?",
             "positive": f"{document['title']} {document['text']}".strip()} for document in documents[:12:2]]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    shards = tmp_path / "shards"
    assert main(["encode", str(tiny_bert_dir), "--corpus", str(corpus), "--output", str(shards),
                 "--shard-size", "16", "--no-progress"]) == 0
    options = ["--model", str(tiny_bert_dir), "--corpus", str(corpus), "--num-negatives", "3", "--range", "1", "20"]
    assert main(["mine", str(data), "--output", str(tmp_path / "memory.jsonl"), *options]) == 0
    assert main(["mine", str(data), "--output", str(tmp_path / "shards.jsonl"), "--corpus-embeddings", str(shards),
                 "--query-block-size", "2", "--corpus-block-size", "5", *options]) == 0
    assert (tmp_path / "shards.jsonl").read_text() == (tmp_path / "memory.jsonl").read_text()
    capsys.readouterr()

    edited = tmp_path / "edited.jsonl"
    edited.write_text(corpus.read_text(encoding="utf-8").replace("a", "b", 1), encoding="utf-8")
    assert main(["mine", str(data), "--output", str(tmp_path / "o.jsonl"), "--model", "not-a-model", "--corpus",
                 str(edited), "--corpus-embeddings", str(shards)]) == 1
    assert f"contrasent mine: error: corpus file {edited} is not the file the shards in {shards} were encoded " \
           "from" in capsys.readouterr().err
    assert main(["mine", str(data), "--output", str(tmp_path / "o.jsonl"), "--model", "m",
                 "--corpus-embeddings", str(shards)]) == 2
    assert "--corpus-embeddings needs --corpus" in capsys.readouterr().err
