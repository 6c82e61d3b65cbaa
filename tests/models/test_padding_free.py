"""Padding-free forward passes (`contrasent.models.padding_free`) equal padded ones: embeddings and gradients."""

from __future__ import annotations

import datasets
import pytest
import torch
from transformers import RobertaConfig, RobertaModel

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.models.config import EncoderConfig
from contrasent.models.padding_free import (
    equal_length_groups,
    pack,
    position_ids,
    supports_padding_free,
    unpack,
)
from contrasent.models.pooling import POOLING_MODES

TEXTS = ["A man is playing a guitar.", "Hi.", "Two dogs are running through a snowy field together.",
         "A woman slices an onion.", "Hi there.", "A man plays guitar.", "The cat sleeps."]


def test_packing_helpers():
    packed = pack([[5, 6], [7], [8, 9]])
    assert packed["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert packed["sequence_lengths"].tolist() == [2, 1, 2]
    assert position_ids(packed["sequence_lengths"]).tolist() == [[0, 1, 0, 0, 1]]
    assert equal_length_groups([1, 1, 2, 2, 2, 5]) == [(0, 2, 1), (2, 3, 2), (8, 1, 5)]
    hidden = torch.arange(5.0).reshape(1, 5, 1)
    padded, mask = unpack(hidden, packed["sequence_lengths"])
    assert padded[..., 0].tolist() == [[0, 1], [2, 0], [3, 4]]
    assert mask.tolist() == [[1, 1], [1, 0], [1, 1]]


def load(folder, pooling: str, dtype=torch.float64) -> SentenceEncoder:
    encoder = SentenceEncoder.from_pretrained(folder)
    encoder.config = EncoderConfig(**{**encoder.config.to_dict(), "pooling": pooling})
    for module in encoder.modules():  # deterministic train mode: the two paths must then agree exactly
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return encoder.to(dtype).train()


def forward_both(encoder: SentenceEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    token_ids = encoder.tokenizer(TEXTS, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))  # as the collator sorts
    padded = encoder(**encoder.tokenizer.pad({"input_ids": [token_ids[i] for i in order]}, return_tensors="pt"))
    packed = encoder(**pack([token_ids[i] for i in order]))
    return padded, packed


@pytest.mark.parametrize("pooling", POOLING_MODES)
def test_embeddings_and_gradients_equal_padded(tiny_bert_dir, pooling):
    encoder = load(tiny_bert_dir, pooling)
    padded, packed = forward_both(encoder)
    torch.testing.assert_close(packed, padded, rtol=0, atol=1e-10)
    weights = torch.randn_like(padded)
    grads = []
    for embeddings in (padded, packed):
        encoder.zero_grad()
        (embeddings * weights).sum().backward(retain_graph=True)
        grads.append({name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=0, atol=1e-10, msg=name)


def test_real_minilm_embeddings_equal_padded(minilm_dir):
    padded, packed = forward_both(load(minilm_dir, "mean", dtype=torch.float32))
    assert (packed - padded).abs().max().item() < 1e-5
    encoder = SentenceEncoder.from_pretrained(minilm_dir)
    assert supports_padding_free(encoder)
    assert encoder.backbone.config._attn_implementation == "sdpa"  # selected only during the forward


@pytest.fixture
def roberta_encoder(tiny_bert_dir) -> SentenceEncoder:
    """RoBERTa counts positions from padding_idx + 1, so packed positions 0..L-1 would be wrong."""
    tokenizer = SentenceEncoder.from_pretrained(tiny_bert_dir).tokenizer
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return SentenceEncoder(RobertaModel(config, add_pooling_layer=False), tokenizer)


def test_unsupported_encoder_is_detected(roberta_encoder):
    assert not supports_padding_free(roberta_encoder)


def test_trainer_falls_back_to_padding(roberta_encoder, tiny_bert_dir, tmp_path):
    data = datasets.Dataset.from_dict({"anchor": TEXTS[:4], "positive": TEXTS[3:]})
    args = {"output_dir": str(tmp_path), "use_cpu": True, "report_to": "none", "per_device_train_batch_size": 4}
    trainer = ContrastiveTrainer(model=roberta_encoder, train_dataset=data,
                                 args=ContrastiveTrainingArguments(**args))
    assert trainer.data_collator.padding_free is False
    assert "attention_mask" in next(iter(trainer.get_train_dataloader())).chunks[0]
    bert = SentenceEncoder.from_pretrained(tiny_bert_dir)
    for option in (True, False):
        trainer = ContrastiveTrainer(model=bert, train_dataset=data,
                                     args=ContrastiveTrainingArguments(padding_free=option, **args))
        assert trainer.data_collator.padding_free is option
        features = next(iter(trainer.get_train_dataloader())).chunks
        assert ("sequence_lengths" in features[0]) is option
