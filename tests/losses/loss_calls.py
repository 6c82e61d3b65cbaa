"""How to call each loss on one batch of embeddings, whatever its ``input_format``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Constructor arguments that make each objective as sharp as the issue asks to survive (τ = 0.01).
SHARP = {
    "infonce": {"temperature": 0.01, "symmetric": True, "hard_negative_weight": 1.0},
    "ntxent": {"temperature": 0.01},
    "neg": {},
    "nce": {"temperature": 0.01},
    "margin_contrastive": {},
    "triplet": {"mining": "batch_hard"},
    "npair": {},
    "soft_nearest_neighbors": {"temperature": 0.01},
    "lifted_structure": {},
    "supcon": {"temperature": 0.01},
    "cosent": {"scale": 100.0},
}


def call_loss(loss: nn.Module, x: Tensor, labels: Tensor) -> Tensor:
    """Call ``loss`` in its input format with rows of ``x`` (B, d) and integer ``labels`` (B,)."""
    torch.manual_seed(0)  # NEG and NCE draw negatives
    fmt = loss.input_format
    if fmt == "anchor_positive":
        return loss(x, x.roll(1, 0), x.flip(0)[:, None].expand(-1, 2, -1))
    if fmt == "views":
        return loss(x, x.roll(1, 0))
    if fmt == "pair_label":
        return loss(x, x.roll(1, 0), labels % 2)
    if fmt == "labels":
        return loss(x, labels)
    assert fmt == "scored_pairs"
    return loss(x, x.roll(1, 0), labels.to(torch.float32))
