"""`contrasent encode`: shards of a real corpus, a resume after `kill -9` that ends with the bytes of an
uninterrupted run without rewriting finished shards, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contrasent.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"
# `contrasent encode` as a user runs it, each encode call slowed down so that the test can kill the
# process between two shards (the tiny model encodes a shard in milliseconds)
SLOW_ENCODE = """
import sys, time
from contrasent.models.encoder import SentenceEncoder
encode = SentenceEncoder.encode
SentenceEncoder.encode = lambda self, *args, **kwargs: (time.sleep(float(sys.argv[1])), encode(self, *args, **kwargs))[1]
from contrasent.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def corpus(scifact_head) -> Path:
    """The first 200 SciFact documents, as a BEIR corpus.jsonl."""
    return scifact_head(200)


def start_encode(model: Path, corpus: Path, output: Path, delay: float) -> subprocess.Popen:
    argv = ["encode", str(model), "--corpus", str(corpus), "--output", str(output), "--shard-size", "20",
            "--batch-size", "8", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SLOW_ENCODE, str(delay), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def recorded_shards(output: Path) -> int:
    try:  # the manifest is replaced atomically: always whole when it exists
        return len(json.loads((output / "manifest.json").read_text())["shards"])
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_a_run_killed_after_its_first_shard_resumes_to_the_uninterrupted_result(tiny_bert_dir, corpus, tmp_path) -> None:
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    uninterrupted = start_encode(tiny_bert_dir, corpus, reference, 0)
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read().decode()

    process = start_encode(tiny_bert_dir, corpus, resumed, 0.3)
    deadline = time.monotonic() + 300
    while recorded_shards(resumed) < 1:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    killed = json.loads((resumed / "manifest.json").read_text())
    assert killed["status"] == "incomplete" and 1 <= len(killed["shards"]) < 10
    finished = [name for shard in killed["shards"] for name in (shard["embeddings"], shard["ids"])]
    stats = {name: ((resumed / name).stat().st_ino, (resumed / name).stat().st_mtime_ns) for name in finished}

    again = start_encode(tiny_bert_dir, corpus, resumed, 0)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    assert {name: ((resumed / name).stat().st_ino, (resumed / name).stat().st_mtime_ns) for name in finished} == stats
    names = sorted(path.name for path in reference.iterdir())
    assert names == sorted(path.name for path in resumed.iterdir())  # no temporary file left
    assert len(names) == 21  # 10 shards of 2 files, and the manifest
    for name in names:  # bit for bit: rows, ids, and the manifest with its checksums and "complete"
        assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name


def test_encode_writes_shards_and_refuses_other_settings(tiny_bert_dir, corpus, tmp_path, capsys) -> None:
    output = tmp_path / "shards"
    argv = ["encode", str(tiny_bert_dir), "--corpus", str(corpus), "--output", str(output), "--shard-size", "128"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "200/200" in err and "text/s" in err and f"encoded 200 documents into 2 shards in {output}" in err
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["model"] == str(tiny_bert_dir)

    assert main([*argv, "--dtype", "float16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"contrasent encode: error: {output / 'manifest.json'} was written with dtype 'float32', "
                       "but this run has dtype 'float16'; run with the settings it was written with, or write "
                       "to another folder")


@pytest.mark.parametrize(("make_case", "message"), [
    (lambda tmp: (tmp / "missing.jsonl", tmp / "out"), "corpus file {tmp}/missing.jsonl not found"),
    (lambda tmp: (tmp / "blank.txt", tmp / "out"), "corpus file {tmp}/blank.txt holds no documents"),
    (lambda tmp: (tmp / "corpus.txt", tmp / "notes.txt"), "{tmp}/notes.txt is a file; refusing to replace it"),
    (lambda tmp: (tmp / "corpus.txt", tmp), "{tmp} is a folder of other files"),
])
def test_encode_errors_are_one_line_and_found_before_the_model_loads(capsys, tmp_path, make_case, message) -> None:
    # the model not/loaded does not exist: each message proves the mistake was found before loading it
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "corpus.txt").write_text("A cat sleeps on the sofa.\n")
    (tmp_path / "notes.txt").write_text("mine")
    corpus, output = make_case(tmp_path)
    assert main(["encode", "not/loaded", "--corpus", str(corpus), "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"contrasent encode: error: {message.format(tmp=tmp_path)}") and err.count("\n") == 1, err
    assert (tmp_path / "notes.txt").read_text() == "mine" and not (tmp_path / "out").exists()


def test_a_model_that_does_not_load_and_a_bad_flag_are_one_line(capsys, tmp_path) -> None:
    (tmp_path / "corpus.txt").write_text("A cat sleeps on the sofa.\n")
    base = ["encode", "not/loaded", "--corpus", str(tmp_path / "corpus.txt"), "--output", str(tmp_path / "out")]
    assert main(base) == 1
    assert "not/loaded" in capsys.readouterr().err.strip().splitlines()[-1]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--shard-size", "0"])
    assert exit_info.value.code == 2
    assert "argument --shard-size: expected a positive integer, got '0'" in capsys.readouterr().err
