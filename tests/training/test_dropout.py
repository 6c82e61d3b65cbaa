"""``--dropout``: the backbone's hidden and attention dropout while training (SimCSE's augmentation)."""

import json
import math

import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import HfArgumentParser, ModernBertConfig, ModernBertModel

from contrasent import SentenceEncoder
from contrasent.models.dropout import set_dropout
from contrasent.training import ContrastiveTrainer, ContrastiveTrainingArguments

TEXTS = ["a cat sits on the mat", "the stock market fell today", "rain is expected tomorrow", "he plays the violin"]


def dropout_rates(model: nn.Module) -> set[float]:
    return {module.p for module in model.modules() if isinstance(module, nn.Dropout)}


def train_mode_embeddings(model: SentenceEncoder, seed: int) -> torch.Tensor:
    model.train()
    torch.manual_seed(seed)
    batch = model.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch)


def make_trainer(model, tmp_path, **options) -> ContrastiveTrainer:
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2,
                                        report_to=[], use_cpu=True, **options)
    return ContrastiveTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": TEXTS}))


def test_set_dropout_sets_modules_and_config(tiny_bert_dir):
    model = SentenceEncoder.from_pretrained(tiny_bert_dir)
    assert dropout_rates(model) == {0.4, 0.1}  # the model's hidden and attention dropout
    assert set_dropout(model, 0.25) > 0
    assert dropout_rates(model) == {0.25}
    config = model.backbone.config
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob) == (0.25, 0.25)


def test_set_dropout_sets_forward_time_attributes():
    """ModernBERT's attention reads a float ``attention_dropout``, not an ``nn.Dropout``."""
    config = ModernBertConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, cls_token_id=1, sep_token_id=2, attention_dropout=0.1, embedding_dropout=0.1, mlp_dropout=0.1)
    model = ModernBertModel(config)
    set_dropout(model, 0.3)
    attention_rates = [module.attention_dropout for module in model.modules() if hasattr(module, "attention_dropout")
                       and isinstance(module.attention_dropout, float)]
    assert attention_rates and set(attention_rates) == {0.3}
    assert dropout_rates(model) == {0.3}
    assert (model.config.attention_dropout, model.config.embedding_dropout, model.config.mlp_dropout) == (0.3,) * 3


def test_dropout_zero_makes_training_forward_passes_identical(tiny_bert_dir, tmp_path):
    """SimCSE's two views are two forward passes; with ``dropout=0`` they are the same embedding."""
    model = SentenceEncoder.from_pretrained(tiny_bert_dir)
    first, second = train_mode_embeddings(model, 0), train_mode_embeddings(model, 1)
    assert not torch.allclose(first, second)  # the model's own dropout draws different masks

    make_trainer(model, tmp_path, dropout=0.0)
    first, second = train_mode_embeddings(model, 0), train_mode_embeddings(model, 1)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert (saved["hidden_dropout_prob"], saved["attention_probs_dropout_prob"]) == (0.0, 0.0)


def test_default_keeps_the_models_dropout(tiny_bert_dir, tmp_path):
    model = SentenceEncoder.from_pretrained(tiny_bert_dir)
    make_trainer(model, tmp_path)
    assert dropout_rates(model) == {0.4, 0.1}
    assert (model.backbone.config.hidden_dropout_prob, model.backbone.config.attention_probs_dropout_prob) == (0.4, 0.1)


def test_dropout_is_a_recipe_flag(tmp_path):
    (args,) = HfArgumentParser(ContrastiveTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--dropout", "0.2", "--report_to", "none"])
    assert args.dropout == 0.2


@pytest.mark.parametrize("rate", [1.0, -0.1, math.nan, math.inf])
def test_bad_dropout_is_refused_naming_the_flag(rate, tmp_path):
    with pytest.raises(ValueError, match=r"--dropout must be a number in \[0, 1\)"):
        ContrastiveTrainingArguments(output_dir=str(tmp_path), dropout=rate)
