"""GradCache's chunks by a token budget: length-sorted texts grouped so that no padded chunk exceeds it."""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_chunks(lengths: Sequence[int], max_tokens: int, max_texts: int | None = None) -> list[list[int]]:
    """Indices ``0..N-1`` sorted by ``lengths`` (stable), cut into chunks of at most ``max_tokens`` padded tokens.

    A chunk's padded size is its longest length × its number of texts (what a padded forward pass
    processes; a padding-free one processes at most that). Chunks are filled greedily, shortest texts
    first, so a chunk of short texts holds many and one of long texts few; a text longer than
    ``max_tokens`` alone is a chunk of its own. ``max_texts`` also caps the texts per chunk (both limits
    apply when both are given).

    Args:
        lengths: (N,) token counts of the texts (special tokens included).
        max_tokens: the budget, > 0.
        max_texts: at most this many texts per chunk (> 0); ``None`` = no cap.
    """
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens}")
    if max_texts is not None and max_texts <= 0:
        raise ValueError(f"max_texts must be a positive integer or None, got {max_texts}")
    chunks: list[list[int]] = []
    chunk: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        # ascending lengths: the text added is the chunk's longest
        full = max_texts is not None and len(chunk) == max_texts
        if chunk and (full or lengths[index] * (len(chunk) + 1) > max_tokens):
            chunks.append(chunk)
            chunk = []
        chunk.append(index)
    if chunk:
        chunks.append(chunk)
    return chunks
