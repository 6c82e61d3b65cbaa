"""Set the dropout of a backbone: SimCSE's augmentation, whose rate its paper's central ablation varies.

Unsupervised SimCSE's two views of a sentence differ only by their dropout masks, so the rate is a training
hyperparameter (the paper's Table 1: p = 0.1 best for BERT; 0 collapses the views into one). A transformers
backbone draws its dropout in two kinds of places, and both are set:

* ``nn.Dropout`` modules (hidden, embedding and attention dropout of BERT, RoBERTa, MPNet ...; BERT's
  attention passes ``self.dropout.p`` to its attention kernel, the padding-free one included);
* float attributes read at each forward pass by the architectures that keep no module
  (``attention_dropout``, ``dropout_prob`` ..., e.g. ModernBERT, Qwen2 and Llama attention).

A dropout that an architecture leaves out when built with rate 0 (ModernBERT replaces its attention
output dropout by ``nn.Identity``) stays out: raising the rate of such a model sets the others only.

The configuration's dropout fields are set to the same rate, so a saved model says what it was trained
with and a model re-loaded from it trains the same way.
"""

from __future__ import annotations

import math

from torch import nn

# Configuration fields holding a dropout rate of the encoder itself (not a classifier head's):
# BERT/RoBERTa/MPNet/ELECTRA, DistilBERT, ModernBERT, T5, Llama/Qwen and GTE ("new") spell them differently.
CONFIG_DROPOUT_FIELDS = (
    "hidden_dropout_prob", "attention_probs_dropout_prob",  # BERT family
    "dropout", "attention_dropout", "hidden_dropout", "activation_dropout",  # DistilBERT, Llama, Qwen, BART
    "embedding_dropout", "mlp_dropout", "dropout_rate",  # ModernBERT, T5
)
# Float attributes that a module reads at forward time instead of an ``nn.Dropout``'s ``p``.
MODULE_DROPOUT_ATTRIBUTES = ("attention_dropout", "dropout_prob", "attn_dropout_prob", "dropout_p")


def check_dropout(rate: float, name: str = "dropout") -> float:
    """Return ``rate`` as a float, or raise a ``ValueError`` naming ``name`` unless 0 ≤ rate < 1."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or not 0 <= rate < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {rate!r}")
    return float(rate)


def set_dropout(model: nn.Module, rate: float) -> int:
    """Set every dropout of ``model`` (modules, forward-time attributes, the configuration) to ``rate``.

    Returns how many places were set; a model with no dropout at all gives 0. Classifier-head fields of
    the configuration (``classifier_dropout``) are left alone: a sentence encoder has no such head.
    """
    rate = check_dropout(rate)
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = rate
            count += 1
            continue
        for attribute in MODULE_DROPOUT_ATTRIBUTES:
            value = module.__dict__.get(attribute)  # plain attributes only: not submodules or properties
            if isinstance(value, float):
                setattr(module, attribute, rate)
                count += 1
        config = module.__dict__.get("config")
        if config is not None and not isinstance(config, nn.Module):
            for field in CONFIG_DROPOUT_FIELDS:
                if isinstance(getattr(config, field, None), float):
                    setattr(config, field, rate)
    return count
