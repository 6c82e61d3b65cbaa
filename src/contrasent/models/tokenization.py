"""The one tokenise-and-pad path: texts -> length-sorted chunks of token tensors, and back to input order.

Both :meth:`SentenceEncoder.encode <contrasent.models.encoder.SentenceEncoder.encode>` and the training
collator (:class:`~contrasent.data.collator.ContrastiveCollator`) go through it:

1. :func:`tokenize`: every text in one tokenizer call (fast tokenizers batch in Rust), truncated to
   ``max_length`` tokens, unpadded; a text is first cut to :func:`character_budget` characters, so that
   the cost of tokenizing it is bounded by ``max_length``, not by its size (a 30 MB line costs what a
   ``max_length × 100``-character one does);
2. :func:`length_sorted_chunks`: the text indices sorted by token count and cut into chunks of
   ``chunk_size``, so that each chunk's texts have similar lengths;
3. :func:`chunk_inputs`: each chunk padded only to its own longest text (:func:`pad`, built in numpy:
   one array fill instead of a tensor per text) or packed padding-free
   (:func:`contrasent.models.padding_free.pack`);
4. :func:`restore_order`: the permutation ``restore`` with ``cat(chunk outputs)[restore]`` in input order.

Transformer encoders embed each text independently of the others in its chunk, so the grouping changes
the compute spent on padding, never an embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from contrasent.models.padding_free import pack

# Characters read per token allowed: far above what text averages (English about 4 to 5 with spaces, code
# under 10); BPE and SentencePiece vocabularies hold no longer pieces, and WordPiece turns a word of more
# than 100 characters into one [UNK] (its max_input_chars_per_word).
MAX_CHARACTERS_PER_TOKEN = 100


def character_budget(max_length: int) -> int:
    """How many characters of a text :func:`tokenize` reads for ``max_length`` tokens: ``max_length × 100``.

    The rule: a text longer than this is cut to it before tokenizing, so its first ``max_length``
    tokens, the ones kept, are those of the whole text unless the text averages more than 100
    characters per token over them: mostly whitespace or control characters, or words of over 100
    characters (one ``[UNK]`` each for BERT). Such a text is embedded from the tokens of its first
    ``max_length × 100`` characters. Every other text gives the same tokens, hence the same embedding,
    as if it had been tokenized whole.
    """
    return max_length * MAX_CHARACTERS_PER_TOKEN


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text (special tokens included), truncated to ``max_length``, unpadded.

    Each text is read up to :func:`character_budget` characters (the rule is there): the cost is bounded
    by ``max_length`` whatever the size of a text.
    """
    budget = character_budget(max_length)
    return tokenizer(
        [text if len(text) <= budget else text[:budget] for text in texts], truncation=True,
        max_length=max_length, padding=False, return_attention_mask=False, return_token_type_ids=False,
    )["input_ids"]


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's padding id; 0 for tokenizers without one (masked out by the attention mask anyway)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def length_sorted_chunks(
    lengths: Sequence[int], chunk_size: int, longest_first: bool = False
) -> list[list[int]]:
    """Indices ``0..N-1`` sorted by ``lengths`` (stable: equal lengths keep input order), in chunks of
    ``chunk_size`` (the last may be shorter). ``longest_first`` puts the longest texts in the first chunk."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=longest_first)
    return [order[start:start + chunk_size] for start in range(0, len(order), chunk_size)]


def pad(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token id lists to the longest: ``{"input_ids", "attention_mask"}``, each (n, T) int64 on CPU."""
    length = max(len(sequence) for sequence in sequences)
    input_ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = sequence
        attention_mask[row, : len(sequence)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}


def chunk_inputs(
    sequences: Sequence[Sequence[int]], pad_id: int, padding_free: bool = False
) -> dict[str, torch.Tensor]:
    """One chunk's encoder inputs: padded (:func:`pad`) or, ``padding_free``, packed into one row
    (``{"input_ids": (1, Σ L_i), "sequence_lengths": (n,)}``)."""
    return pack(sequences) if padding_free else pad(sequences, pad_id)


def restore_order(chunks: Sequence[Sequence[int]]) -> torch.Tensor:
    """(N,) int64 ``restore`` such that ``cat(per-chunk rows)[restore]`` lists the N texts in input order."""
    order = torch.tensor([index for chunk in chunks for index in chunk], dtype=torch.long)
    restore = torch.empty_like(order)
    restore[order] = torch.arange(order.numel())
    return restore

