"""What a backbone can take: a tokenizer of its vocabulary, texts up to its position limit, the
settings an encoder puts on it.

``SentenceEncoder`` checks these when it is built (so also in ``from_pretrained``) and ``encode`` checks
its ``max_length``: a setting the backbone cannot honour is refused with a ``ValueError`` naming it,
instead of an index error deep in the embeddings, or a pooling that fails at the first text.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from contrasent.models.config import EncoderConfig
from contrasent.models.pooling import needs_all_hidden_states


def check_vocabulary(backbone: nn.Module, tokenizer: Any) -> None:
    """A tokenizer with more tokens than the model has embeddings is another model's: ids would overflow."""
    if tokenizer is None or not hasattr(backbone, "get_input_embeddings"):
        return
    rows = backbone.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding matrix has {rows} rows: "
            "the tokenizer does not belong to this model"
        )


def position_limit(backbone: nn.Module) -> int | None:
    """The most tokens ``backbone`` can take: its position embeddings (``None`` when it has no such limit).

    RoBERTa-like models number positions from ``padding_idx + 1``, so two of their
    ``max_position_embeddings`` (514) are unusable: their limit is 512.
    """
    limit = getattr(getattr(backbone, "config", None), "max_position_embeddings", None)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return None
    embeddings = getattr(getattr(backbone, "embeddings", None), "position_embeddings", None)
    padding_idx = getattr(embeddings, "padding_idx", None)
    return limit - (padding_idx + 1) if isinstance(padding_idx, int) else limit


def check_settings(backbone: nn.Module, config: EncoderConfig) -> None:
    """Refuse settings the backbone cannot honour, before they fail (or truncate silently) while encoding."""
    if config.max_seq_length is not None:
        check_length(backbone, config.max_seq_length, "max_seq_length")
    layers = getattr(getattr(backbone, "config", None), "num_hidden_layers", None)
    if needs_all_hidden_states(config.pooling) and isinstance(layers, int) and layers < 2:
        raise ValueError(f"pooling {config.pooling!r} averages two layers, but {type(backbone).__name__} has "
                         f"{layers}; choose another pooling")


def check_length(backbone: nn.Module, length: int, name: str) -> None:
    limit = position_limit(backbone)
    if limit is not None and length > limit:
        raise ValueError(f"{name}={length} is more than {type(backbone).__name__} can take: its position "
                         f"embeddings end at {limit} tokens; pass {name}={limit} or less")
