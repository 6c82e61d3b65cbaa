"""Token ids truncated to ``max_length`` at a cost bounded by ``max_length``, not by the length of the text.

A fast tokenizer called with ``truncation=True`` still tokenises the whole text before it cuts the ids:
one 30 MB line in a training file costs minutes per batch, and gigabytes. :func:`truncated_token_ids`
tokenises only a prefix of each text: ``(max_length + 1) × 8`` characters to start with, cut at its last
whitespace so that every word it keeps is tokenised as in the whole text (tokenizers split words at
whitespace before anything else: WordPiece, byte-level BPE and SentencePiece's metaspace alike). A prefix
of whole words that yields more than ``max_length`` tokens gives exactly the ids of the whole text,
truncated; any other prefix is grown fourfold and tokenised again, up to ``max_length × 1024`` characters.

Only a text whose first ``max_length × 1024`` characters hold no whitespace (one unbroken "word") or no
more than ``max_length`` tokens (mostly whitespace) is cut there, where its ids may differ from a full
tokenisation's: bounded cost wins for such a text, which would embed garbage anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from contrasent.models.tokenization import tokenize

FIRST_CHARS_PER_TOKEN = 8  # English averages 4 to 5 characters a token: most long texts need one round
MAX_CHARS_PER_TOKEN = 1024
GROWTH = 4
_LAST_WHITESPACE = re.compile(r"\s+\S*\Z")
_FIRST_WHITESPACE = re.compile(r"\s")


def truncated_token_ids(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[list[list[int]], list[bool]]:
    """Token ids of each text (special tokens included), truncated to ``max_length`` as
    :func:`~contrasent.models.tokenization.tokenize` would truncate them, and whether each text was longer.

    The tokenizer sees at most ``max_length × 1024`` characters of any text (see the module docstring),
    and each distinct text once (an unsupervised batch holds every text twice); texts are cut at their
    end, or at their start for a tokenizer with ``truncation_side="left"``.
    """
    distinct = list(dict.fromkeys(texts))
    ids, longer = _truncated(tokenizer, distinct, max_length)
    position = {text: index for index, text in enumerate(distinct)}
    return [ids[position[text]] for text in texts], [longer[position[text]] for text in texts]


def _truncated(tokenizer: Any, texts: list[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
    from_left = getattr(tokenizer, "truncation_side", "right") == "left"
    parts, ids = list(texts), [[] for _ in texts]
    bound = max_length * MAX_CHARS_PER_TOKEN
    pending, budget = list(range(len(texts))), min((max_length + 1) * FIRST_CHARS_PER_TOKEN, bound)
    while pending:
        for i in pending:
            parts[i] = _part(texts[i], budget, from_left)
        # one token more than kept: a text has more than max_length tokens exactly when its part has
        found = tokenize(tokenizer, [parts[i] for i in pending], max_length + 1)
        grow = []
        for i, part_ids in zip(pending, found):
            ids[i] = part_ids
            if len(parts[i]) == len(texts[i]) or budget == bound:
                continue
            # a part cut inside a word may tokenise differently (BERT makes a word of > 100 characters [UNK])
            if len(part_ids) <= max_length or not _whole_words(texts[i], parts[i], from_left):
                grow.append(i)
        pending, budget = grow, min(budget * GROWTH, bound)
    longer = [len(ids_i) > max_length or len(part) < len(text) for ids_i, part, text in zip(ids, parts, texts)]
    over = [i for i, ids_i in enumerate(ids) if len(ids_i) > max_length]
    if over:  # tokenised again at max_length, so that the closing special tokens are where the tokenizer puts them
        for i, truncated in zip(over, tokenize(tokenizer, [parts[i] for i in over], max_length)):
            ids[i] = truncated
    return ids, longer


def _part(text: str, budget: int, from_left: bool) -> str:
    """``text`` itself when it fits ``budget`` characters; else its first (last) ``budget`` characters, cut
    before (after) their last (first) whitespace when they hold one."""
    if len(text) <= budget:
        return text
    if from_left:
        part = text[-budget:]
        space = _FIRST_WHITESPACE.search(part)
        return part[space.start():] if space else part  # a leading space belongs to the next word (BPE)
    part = text[:budget]
    space = _LAST_WHITESPACE.search(part)
    return part[:space.start()] if space else part


def _whole_words(text: str, part: str, from_left: bool) -> bool:
    """Whether ``part``, cut from ``text``, ends (starts) at a whitespace, so that it holds whole words."""
    if from_left:
        return part[0].isspace() or text[-len(part) - 1].isspace()
    return text[len(part)].isspace()
