"""`ContrastiveTrainer` with InfoNCE makes the same updates as sentence-transformers' trainer with
`MultipleNegativesRankingLoss` (cosine / 0.05 over in-batch positives and hard negatives).

Dropout is switched off in both, so the two runs are deterministic and any difference is a difference in
the math (our padding-free, length-sorted encoding included), not in random masks. Plain SGD: Adam's
first step divides by |g|, which would turn rounding noise in near-zero gradients into full-size steps.
"""

from __future__ import annotations

import pytest
import torch

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import load_training_file


def no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def assert_same_updates(model_dir, data, tmp_path, max_length: int, padding_free: bool, common: dict) -> None:
    """Train ``ContrastiveTrainer`` (InfoNCE, τ = 0.05, no duplicate masking) and sentence-transformers'
    trainer (MNRL, scale 20) from ``model_dir`` with dropout off on ``data``; assert the same weights."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as STArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    ours = no_dropout(SentenceEncoder.from_pretrained(model_dir, max_seq_length=max_length))
    initial = {name: p.detach().clone() for name, p in ours.backbone.named_parameters()}
    ContrastiveTrainer(model=ours, train_dataset=data, args=ContrastiveTrainingArguments(
        output_dir=str(tmp_path / "ours"), temperature=0.05, mask_duplicates=False, max_seq_length=max_length,
        padding_free=padding_free, **common)).train()

    theirs = no_dropout(SentenceTransformer(str(model_dir), device="cpu"))
    theirs.max_seq_length = max_length
    loss = MultipleNegativesRankingLoss(theirs, scale=20.0)
    SentenceTransformerTrainer(model=theirs, train_dataset=data, loss=loss,
                               args=STArguments(output_dir=str(tmp_path / "theirs"), **common)).train()

    their_parameters = dict(theirs[0].auto_model.named_parameters())
    largest_update = max((p.detach() - initial[n]).abs().max().item() for n, p in ours.backbone.named_parameters())
    assert largest_update > 1e-3  # the runs did train
    for name, p in ours.backbone.named_parameters():
        if name.startswith("pooler."):  # unused by mean pooling: no gradient in either
            continue
        torch.testing.assert_close(p.detach(), their_parameters[name].detach(), rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("padding_free", [True, False])
def test_same_updates_as_sentence_transformers_mnrl(tiny_bert_dir, data_dir, tmp_path, padding_free):
    data = load_training_file(data_dir / "snli_senteval" / "nli_triples_snli_dev_test.csv").select(range(16))
    common = {"max_steps": 3, "per_device_train_batch_size": 16, "learning_rate": 2.0, "optim": "sgd",
              "lr_scheduler_type": "constant", "use_cpu": True, "report_to": "none", "save_strategy": "no", "seed": 0,
              "dataloader_num_workers": 0}
    assert_same_updates(tiny_bert_dir, data, tmp_path, 32, padding_free, common)


def scifact_rows(data_dir, count: int) -> dict[str, list[str]]:
    """(query, title + " " + abstract) rows of SciFact train, queries with several positives first: the
    benchmark's protocol, whose documents run past 256 tokens and whose queries repeat."""
    from contrasent.evaluation import read_beir

    train = read_beir(data_dir / "beir_scifact", split="train")
    positives = {query: [doc for doc, relevance in docs.items() if relevance > 0] for query, docs in train.qrels.items()}
    ordered = sorted(positives, key=lambda query: -len(positives[query]))
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    for query in ordered:
        for document in positives[query]:
            rows["anchor"].append(train.queries[query])
            rows["positive"].append(train.corpus[document].joined())
    return {column: values[:count] for column, values in rows.items()}


def test_same_updates_on_the_scifact_protocol(tiny_bert_dir, data_dir, tmp_path):
    """Issue #14: the SciFact benchmark's features that the NLI test above does not reach (documents
    truncated at 256 tokens, a query repeated with its several positives in one batch, padding-free
    packing of long texts, a warmup-and-decay schedule) change nothing: with dropout off and the same
    batch, both trainers make the same updates. (Repeated queries need ``mask_duplicates=False``: by
    default we do not use a query's other positive as its negative, sentence-transformers does.)"""
    import datasets

    rows = scifact_rows(data_dir, 12)
    assert len(set(rows["anchor"])) < len(rows["anchor"])  # repeated queries in the one batch
    data = datasets.Dataset.from_dict(rows)
    common = {"max_steps": 3, "per_device_train_batch_size": 12, "learning_rate": 2.0, "optim": "sgd",
              "lr_scheduler_type": "linear", "warmup_steps": 1, "use_cpu": True, "report_to": "none",
              "save_strategy": "no", "seed": 0, "dataloader_num_workers": 0}
    tokenizer = SentenceEncoder.from_pretrained(tiny_bert_dir).tokenizer
    assert max(len(ids) for ids in tokenizer(rows["positive"])["input_ids"]) > 256  # truncation is exercised
    assert_same_updates(tiny_bert_dir, data, tmp_path, 256, True, common)
