"""`encode_corpus` under torch.distributed: 2 gloo processes, each encoding a contiguous part of the missing
shards while rank 0 alone writes the manifest, write the bytes one process writes, whether they start
afresh or resume a folder whose manifest records some shards (not a prefix: what a killed 2-process run
leaves); and a foreign manifest is refused on both ranks."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from contrasent.models.encoder import SentenceEncoder
from contrasent.search.corpus_shards import encode_corpus

WORLD = 2
OPTIONS = {"shard_size": 32, "batch_size": 16, "show_progress_bar": False}  # 200 rows: 7 shards
RECORDED_BEFORE_RESUME = (0, 1, 4)


def worker(rank: int, init_file: str, model_dir: str, corpus: str, tmp: str) -> None:
    # a bounded timeout: a collective that cannot complete fails the test instead of hanging the suite
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=120))
    torch.set_num_threads(1)  # the reference's kernels, for bitwise equality
    try:
        model = SentenceEncoder.from_pretrained(model_dir)
        results = {}
        for name in ("fresh", "resumed"):
            results[name] = encode_corpus(model, corpus, Path(tmp) / name, **OPTIONS)
        try:
            encode_corpus(model, corpus, Path(tmp) / "fresh", **{**OPTIONS, "shard_size": 64})
        except ValueError as error:
            results["foreign"] = str(error)
        (Path(tmp) / f"rank{rank}.json").write_text(json.dumps(results))
        dist.barrier()  # tear down together (see tests/training/test_distributed.py)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def corpus(scifact_head) -> Path:
    return scifact_head(200)


def test_two_processes_write_what_one_process_writes(tiny_bert_dir, corpus, tmp_path, spawn) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = tmp_path / "reference"
        encode_corpus(SentenceEncoder.from_pretrained(tiny_bert_dir), corpus, reference, **OPTIONS)
    finally:
        torch.set_num_threads(threads)
    # a folder as a killed 2-process run leaves it: some shards recorded, not only the first ones
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    manifest = json.loads((reference / "manifest.json").read_text())
    manifest["status"] = "incomplete"
    manifest["shards"] = [manifest["shards"][number] for number in RECORDED_BEFORE_RESUME]
    for shard in manifest["shards"]:
        for key in ("embeddings", "ids"):
            shutil.copy2(reference / shard[key], resumed / shard[key])
    (resumed / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    finished = {path.name: path.stat().st_mtime_ns for path in resumed.iterdir() if path.name != "manifest.json"}

    spawn(worker, (str(tmp_path / "init"), str(tiny_bert_dir), str(corpus), str(tmp_path)), WORLD)

    for name in ("fresh", "resumed"):
        folder = tmp_path / name
        assert sorted(path.name for path in folder.iterdir()) == sorted(path.name for path in reference.iterdir())
        for path in reference.iterdir():
            assert (folder / path.name).read_bytes() == path.read_bytes(), (name, path.name)
    assert {name: (resumed / name).stat().st_mtime_ns for name in finished} == finished  # never rewritten
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    expected = json.loads((reference / "manifest.json").read_text())
    for result in results:  # every rank returns the final manifest, and gets rank 0's refusal
        assert result["fresh"] == result["resumed"] == expected
        assert "manifest.json was written with shard_size 32, but this run has shard_size 64" in result["foreign"]
