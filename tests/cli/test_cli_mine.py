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
