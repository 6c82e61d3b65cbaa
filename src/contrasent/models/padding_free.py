"""Padding-free forward passes: N texts as one row of tokens, each attending only to itself.

A padded batch of texts with lengths ``L_1..L_N`` costs ``N · max L_i`` token positions in every linear
layer, which is most of an encoder's compute at sentence lengths. Here the texts are concatenated into
one ``(1, Σ L_i)`` row instead; position ids restart at 0 for each text, and attention runs per text.
Every linear layer, layer norm and dropout then touches exactly ``Σ L_i`` positions.

Attention: consecutive texts of equal length form a group (the collator sorts texts by length, so a
batch has about as many groups as distinct lengths); each group is one
``scaled_dot_product_attention`` call on ``(n, heads, L, head_dim)`` without a mask. The attention
function is registered with transformers' ``AttentionInterface`` and selected only for the duration of a
padding-free forward, so the model is unchanged for every other use.

Which encoders qualify is checked by running, not by listing architectures: :func:`supports_padding_free`
compares padding-free and padded embeddings of a few texts. An encoder whose attention ignores the
interface, or whose position ids are not ``0..L-1`` (RoBERTa starts at ``padding_idx + 1``), fails the
check and is trained with padded, length-sorted chunks instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

ATTENTION_NAME = "contrasent_padding_free"

# (start position in the packed row, number of texts, length of each)
Group = tuple[int, int, int]


def pack(token_ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
    """Token id lists -> ``{"input_ids": (1, Σ L_i), "sequence_lengths": (N,)}``, the padding-free inputs
    of :meth:`SentenceEncoder.forward <contrasent.SentenceEncoder.forward>`. Texts keep their order."""
    flat = [token for ids in token_ids for token in ids]
    return {
        "input_ids": torch.tensor([flat], dtype=torch.long),
        "sequence_lengths": torch.tensor([len(ids) for ids in token_ids], dtype=torch.long),
    }


def equal_length_groups(lengths: Sequence[int]) -> list[Group]:
    """Runs of consecutive equal lengths: ``[(start, count, length), ...]``, starts in token positions."""
    groups: list[list[int]] = []
    start = 0
    for length in lengths:
        if groups and groups[-1][2] == length:
            groups[-1][1] += 1
        else:
            groups.append([start, 1, length])
        start += length
    return [(first, count, length) for first, count, length in groups]


def position_ids(lengths: torch.Tensor) -> torch.Tensor:
    """``(N,)`` lengths -> ``(1, Σ L_i)`` positions ``0..L_1-1, 0..L_2-1, ...``."""
    total = int(lengths.sum())
    starts = torch.cumsum(lengths, 0) - lengths
    return (torch.arange(total, device=lengths.device) - starts.repeat_interleave(lengths)).unsqueeze(0)


def unpack(packed: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, Σ L_i, H)`` -> zero-padded ``(N, max L, H)`` and its ``(N, max L)`` attention mask, so that
    every pooling strategy of :mod:`contrasent.models.pooling` applies unchanged."""
    mask = torch.arange(int(lengths.max()), device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
    padded = packed.new_zeros(*mask.shape, packed.shape[-1])
    padded[mask] = packed[0]  # row-major order of the mask is the packed order
    return padded, mask.long()


def padding_free_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    padding_free_groups: Sequence[Group] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention within each text of a packed row (transformers' attention-function signature).

    ``query``/``key``/``value``: (1, heads, Σ L_i, head_dim). Returns (1, Σ L_i, heads, head_dim), as
    transformers' SDPA function does. Without ``padding_free_groups`` (a forward that is not padding-free),
    it is transformers' SDPA attention.
    """
    if padding_free_groups is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    heads, head_dim = query.shape[1], query.shape[3]
    outputs = []
    for start, count, length in padding_free_groups:
        span = slice(start, start + count * length)
        # (heads, count·L, d) -> (count, heads, L, d)
        q, k, v = (
            t[0, :, span].reshape(heads, count, length, head_dim).transpose(0, 1) for t in (query, key, value)
        )
        out = nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling)
        outputs.append(out.permute(0, 2, 1, 3).reshape(count * length, heads, head_dim))
    return torch.cat(outputs).unsqueeze(0), None


_registered = False


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(ATTENTION_NAME, padding_free_attention)
        _registered = True


@contextmanager
def _attention_selected(backbone: nn.Module) -> Iterator[None]:
    """Select the padding-free attention on ``backbone`` (and its sub-configs) for one forward."""
    _register()
    config = backbone.config
    previous = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = previous


def backbone_forward(
    backbone: nn.Module, input_ids: torch.Tensor, sequence_lengths: torch.Tensor, output_hidden_states: bool
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Run ``backbone`` padding-free on packed ``input_ids`` (1, Σ L_i).

    Returns ``(last_hidden_state (N, max L, H), attention_mask (N, max L), hidden_states or None)``,
    padded back per text, as a padded forward would return them (padding positions hold zeros).
    """
    groups = equal_length_groups(sequence_lengths.tolist())
    with _attention_selected(backbone):
        output = backbone(
            input_ids=input_ids, position_ids=position_ids(sequence_lengths),
            output_hidden_states=output_hidden_states, return_dict=True, padding_free_groups=groups,
        )
    last, mask = unpack(output.last_hidden_state, sequence_lengths)
    hidden = None
    if output_hidden_states:
        hidden = tuple(unpack(layer, sequence_lengths)[0] for layer in output.hidden_states)
    return last, mask, hidden


def supports_padding_free(encoder: nn.Module, tolerance: float = 1e-4) -> bool:
    """Whether ``encoder`` (a :class:`~contrasent.SentenceEncoder`) gives the same embeddings padding-free as
    padded, checked on three texts of different lengths in eval mode (no dropout)."""
    texts = ["A man is playing a guitar on the stage tonight.", "Hello.", "Two dogs run in a field."]
    token_ids = encoder.tokenizer(texts, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    token_ids = sorted(token_ids, key=len)
    was_training = encoder.training
    encoder.eval()
    try:
        device = next(encoder.parameters()).device
        with torch.no_grad():
            padded = encoder(**encoder.tokenizer.pad({"input_ids": token_ids}, return_tensors="pt").to(device))
            packed = encoder(**{name: tensor.to(device) for name, tensor in pack(token_ids).items()})
        difference = (padded.float() - packed.float()).abs().max().item()
    except Exception as error:  # noqa: BLE001 - any model that cannot run this way is trained padded; say why
        logger.info("padding-free forward unavailable for this encoder (%s: %s); using padded chunks",
                    type(error).__name__, error)
        return False
    finally:
        encoder.train(was_training)
    if difference > tolerance:
        logger.info("padding-free embeddings differ from padded ones by %.2e for this encoder; using padded "
                    "chunks", difference)
        return False
    return True
