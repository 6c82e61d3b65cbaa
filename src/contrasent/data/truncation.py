"""The collator's token ids, truncated to ``max_length``, and which texts were longer, at a cost bounded by
``max_length`` whatever the size of a text.

:func:`~contrasent.models.tokenization.tokenize` reads each text up to its character budget
(:func:`~contrasent.models.tokenization.character_budget`), so tokenizing a 30 MB line costs what a short
one does. The collator also needs to know whether a text was cut, for its warning: tokenizing the texts
that reach the limit again in full would undo the bound. Instead each text is tokenized to one token more
than kept: a text has more than ``max_length`` tokens exactly when that gives ``max_length + 1``; only
those texts are tokenized again, at ``max_length``, so that the closing special tokens are where the
tokenizer puts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contrasent.models.tokenization import character_budget, tokenize


def truncated_token_ids(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[list[list[int]], list[bool]]:
    """The ids :func:`~contrasent.models.tokenization.tokenize` gives each text at ``max_length``, and
    whether each text was longer (more tokens, or more characters than the budget read).

    Each distinct text is tokenized once (an unsupervised batch holds every text twice), reading at most
    ``character_budget(max_length + 1)`` characters of it.
    """
    distinct = list(dict.fromkeys(texts))
    ids = tokenize(tokenizer, distinct, max_length + 1)
    budget = character_budget(max_length + 1)
    longer = [len(text_ids) > max_length or len(text) > budget for text, text_ids in zip(distinct, ids)]
    over = [index for index, text_ids in enumerate(ids) if len(text_ids) > max_length]
    if over:
        for index, truncated in zip(over, tokenize(tokenizer, [distinct[index] for index in over], max_length)):
            ids[index] = truncated
    position = {text: index for index, text in enumerate(distinct)}
    return [ids[position[text]] for text in texts], [longer[position[text]] for text in texts]
