"""Pooling: token embeddings of a transformer -> one vector per text.

Every strategy takes the hidden states of one forward pass and the attention mask and returns a
``(batch, hidden)`` tensor. Masked positions (padding) never contribute.

=================  ==========================================================================  ======================
name               formula (``H`` = hidden states, ``m`` = attention mask, ``L`` = last layer)   sentence-transformers
=================  ==========================================================================  ======================
``cls``            ``H_L[first t with m_t=1]`` (position 0 unless left-padded)                 ``cls``
``mean``           ``Σ_t m_t H_L[t] / Σ_t m_t``                                                ``mean``
``max``            ``max_{t: m_t=1} H_L[t]`` (per dimension)                                   ``max``
``first_last_avg`` ``Σ_t m_t (H_1[t] + H_L[t]) / 2 / Σ_t m_t`` (``H_1``: first transformer     none
                   layer's output, not the embedding layer)
``last2_avg``      ``Σ_t m_t (H_{L-1}[t] + H_L[t]) / 2 / Σ_t m_t``                              none
``last_token``     ``H_L[last t with m_t=1]`` (works for left and right padding)               ``lasttoken``
=================  ==========================================================================  ======================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# The mode names are plain data kept in config (which must load without torch); re-exported here, the
# place readers look for them.
from contrasent.models.config import POOLING_MODES, SENTENCE_TRANSFORMERS_POOLING_FLAGS, check_pooling_mode

__all__ = [
    "POOLING_MODES",
    "SENTENCE_TRANSFORMERS_POOLING_FLAGS",
    "check_pooling_mode",
    "masked_mean",
    "needs_all_hidden_states",
    "pool",
]


def needs_all_hidden_states(mode: str) -> bool:
    """Whether ``mode`` reads layers other than the last (the backbone must return ``hidden_states``)."""
    return mode in ("first_last_avg", "last2_avg")


def masked_mean(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the unmasked positions. ``tokens`` (B, T, H), ``attention_mask`` (B, T) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    # The clamp keeps an all-padding row finite (0) instead of 0/0, as sentence-transformers does.
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def pool(
    mode: str,
    last_hidden_state: torch.Tensor,
    attention_mask: torch.Tensor,
    hidden_states: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Pool token embeddings into sentence embeddings.

    Args:
        mode: one of :data:`POOLING_MODES`.
        last_hidden_state: (B, T, H) output of the last layer.
        attention_mask: (B, T), 1 for real tokens and 0 for padding.
        hidden_states: the backbone's ``hidden_states`` (embedding output followed by every layer's
            output, as transformers returns them with ``output_hidden_states=True``); required by
            ``first_last_avg`` and ``last2_avg``.

    Returns:
        (B, H) sentence embeddings.
    """
    check_pooling_mode(mode)
    if mode == "cls":
        # the first pooled position: 0, or the first after a prompt left out of the pooling (as
        # sentence-transformers picks it), or after left padding
        first = attention_mask.to(torch.int32).argmax(dim=1)
        return last_hidden_state[torch.arange(last_hidden_state.shape[0], device=first.device), first]
    if mode == "mean":
        return masked_mean(last_hidden_state, attention_mask)
    if mode == "max":
        padding = (attention_mask == 0).unsqueeze(-1)
        return last_hidden_state.masked_fill(padding, torch.finfo(last_hidden_state.dtype).min).amax(dim=1)
    if mode == "last_token":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.to(torch.long) * positions).argmax(dim=1)
        return last_hidden_state[torch.arange(last_hidden_state.shape[0], device=last.device), last]
    if hidden_states is None or len(hidden_states) < 3:
        raise ValueError(
            f"pooling {mode!r} needs the hidden states of every layer (output_hidden_states=True) "
            "and a backbone with at least 2 layers"
        )
    # hidden_states[0] is the embedding layer's output; [1] is the first transformer layer's.
    first = hidden_states[1] if mode == "first_last_avg" else hidden_states[-2]
    return masked_mean((first + hidden_states[-1]) / 2.0, attention_mask)
