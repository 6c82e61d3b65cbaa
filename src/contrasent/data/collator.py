"""`ContrastiveCollator`: rows of texts -> a :class:`~contrasent.data.batch.Batch`, ready for one step.

A batch of B rows with V views (text columns; 2 dropout views of one text in unsupervised mode) holds
N = V·B texts. They go through the encoder's tokenise-and-pad path (:mod:`contrasent.models.tokenization`):
tokenized together, sorted by token count and cut into chunks of ``chunk_size`` texts (or of at most
``chunk_tokens`` padded tokens), each padded only to its own longest member (or packed padding-free).
Running the encoder on each chunk and indexing the concatenated outputs with ``restore`` gives the (N, d)
embeddings in view-major order (view 0 rows 0..B-1, view 1 rows 0..B-1, ...). Padding per length-sorted
chunk wastes far less compute than padding every column to the batch's longest text, and transformer
encoders embed each sequence independently of its neighbours, so the embeddings are the same.

Prompts (``--prompts``) are prepended to each column's texts before tokenizing, as sentence-transformers'
collator does, so truncation cuts the end of the text, never the prompt. The text ids of the duplicate
masks stay those of the raw texts, as the ``no_duplicates`` sampler judges them: a text under two prompts
(``"query: X"``, ``"passage: X"``) is the same text, and using one as a negative of the other would push
a query away from a passage that says exactly the same.

A row short of hard negatives (``None`` in a negative column, as
:func:`~contrasent.search.mining.mine_hard_negatives` leaves it) has nothing to encode there: only the
texts present are tokenized and chunked, ``restore`` lists them skipping the missing slots, and
``Batch.negative_valid`` (B, k) marks which slots hold a text; the step puts zeros in the others and
leaves them out of the loss (:mod:`contrasent.training.step`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from contrasent.data.batch import MISSING_TEXT_ID, Batch
from contrasent.data.chunking import token_budget_chunks
from contrasent.data.columns import ColumnLayout
from contrasent.data.text_ids import text_ids
from contrasent.data.truncation import truncated_token_ids
from contrasent.models.prompts import prompt_token_count
from contrasent.models.tokenization import chunk_inputs, length_sorted_chunks, pad_token_id, restore_order

logger = logging.getLogger(__name__)

ROW_ID_COLUMN = "__row_id__"


class ContrastiveCollator:
    """Collate dataset rows into the :class:`~contrasent.data.batch.Batch` of one training step.

    Args:
        tokenizer: a (fast) transformers tokenizer.
        layout: the column roles (:class:`~contrasent.data.ColumnLayout`).
        max_length: truncate texts to this many tokens.
        chunk_size: texts per forward pass (default: the batch's row count B, so a step runs V passes;
            padding-free, all N texts in one pass).
        padding_free: emit each chunk as one unpadded row (:mod:`contrasent.models.padding_free`) instead of a
            padded (chunk, T_chunk) tensor; only for encoders that support it (the trainer checks).
        chunk_tokens: instead, chunks of at most this many padded tokens (longest text × texts), at most
            ``chunk_size`` texts each when that is given too
            (:func:`~contrasent.data.chunking.token_budget_chunks`).
        prompts: the string prepended to each text of a column, by column name (columns not named get none;
            both views of an unsupervised batch get the column's prompt).
        include_prompt: the encoder's ``config.include_prompt``; when ``False`` and there are prompts, each
            chunk also carries ``prompt_lengths`` (n,) int64: the prompt tokens of each of its texts
            (:func:`~contrasent.models.prompts.prompt_token_count`), which the encoder leaves out of the pooling.

    ``__call__`` returns a :class:`~contrasent.data.batch.Batch`: ``class_labels`` when the layout has a
    label column, ``scores`` when it has a score column, ``row_ids`` when rows carry
    :data:`ROW_ID_COLUMN` (the trainer adds it, to name rows in errors), ``negative_valid`` when a hard
    negative (view 2..) is ``None`` (validation lets ``None`` through in hard-negative columns only).

    Texts longer than ``max_length`` tokens are truncated; the first batch that holds one logs a warning.
    The tokenizer sees only a prefix of each text (:mod:`contrasent.data.truncation`), so a huge text
    costs no more than one of a few thousand characters.
    """

    def __init__(
        self, tokenizer: Any, layout: ColumnLayout, max_length: int, chunk_size: int | None = None,
        padding_free: bool = False, chunk_tokens: int | None = None, prompts: Mapping[str, str] | None = None,
        include_prompt: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.layout = layout
        self.max_length = max_length
        self.chunk_size = chunk_size
        self.padding_free = padding_free
        self.chunk_tokens = chunk_tokens
        self.prompts = dict(prompts or {})
        self.include_prompt = include_prompt
        self.pad_id = pad_token_id(tokenizer)
        self.warned_truncation = False

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Batch:
        columns = [[row[name] for row in rows] for name in self.layout.text_columns]
        prompts = [self.prompts.get(name, "") for name in self.layout.text_columns]
        if self.layout.mode == "unsupervised":
            columns, prompts = columns * 2, prompts * 2  # the same texts twice: dropout makes the two views differ
        present = torch.tensor([[text is not None for text in column] for column in columns])  # (V, B)
        if not bool(present[:2].all()):
            view = int((~present[:2]).any(dim=1).nonzero()[0])
            raise ValueError(f"column {self.layout.text_columns[view % len(self.layout.text_columns)]!r} holds "
                             "None; only hard-negative columns (views 2..) may lack a text")
        texts = [prompt + text for prompt, column in zip(prompts, columns) for text in column if text is not None]
        token_ids, longer = truncated_token_ids(self.tokenizer, texts, self.max_length)
        if any(longer) and not self.warned_truncation:
            longest = max(len(text) for text, cut in zip(texts, longer) if cut)
            logger.warning("texts longer than max_seq_length=%d tokens are truncated (one in this batch has %d "
                           "characters); this warning is shown once", self.max_length, longest)
            self.warned_truncation = True
        lengths = [len(ids) for ids in token_ids]
        if self.chunk_tokens is not None:
            groups = token_budget_chunks(lengths, self.chunk_tokens, self.chunk_size)
        else:
            groups = length_sorted_chunks(lengths, self.chunk_size or (len(texts) if self.padding_free else len(rows)))
        chunks = [chunk_inputs([token_ids[i] for i in group], self.pad_id, self.padding_free) for group in groups]
        if any(prompts) and not self.include_prompt:
            skipped = self._prompt_lengths(prompts, len(rows))[present.flatten()]
            for chunk, group in zip(chunks, groups):
                chunk["prompt_lengths"] = skipped[group]
        return Batch(
            chunks=chunks, restore=restore_order(groups), num_views=len(columns),
            text_ids=torch.stack([_column_ids(column) for column in columns]),
            class_labels=self._column(rows, self.layout.label_column, torch.long),
            scores=self._column(rows, self.layout.score_column, torch.float32),
            row_ids=self._column(rows, ROW_ID_COLUMN if ROW_ID_COLUMN in rows[0] else None, torch.long),
            negative_valid=None if bool(present.all()) else present[2:].T.contiguous(),
        )

    def _prompt_lengths(self, prompts: Sequence[str], rows: int) -> torch.Tensor:
        """(N,) int64: how many leading tokens of each text, view-major, are its prompt's."""
        counts = [prompt_token_count(self.tokenizer, prompt) if prompt else 0 for prompt in prompts]
        return torch.tensor(counts, dtype=torch.long).repeat_interleave(rows)

    @staticmethod
    def _column(rows: Sequence[dict[str, Any]], name: str | None, dtype: torch.dtype) -> torch.Tensor | None:
        return None if name is None else torch.tensor([row[name] for row in rows], dtype=dtype)


def _column_ids(texts: Sequence[str | None]) -> torch.Tensor:
    """(B,) int64 text ids of a column; a missing text (``None``) gets :data:`MISSING_TEXT_ID`."""
    ids = text_ids(text if text is not None else "" for text in texts)
    ids[torch.tensor([text is None for text in texts])] = MISSING_TEXT_ID
    return ids
