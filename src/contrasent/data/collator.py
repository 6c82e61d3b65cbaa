"""`ContrastiveCollator`: rows of texts -> a :class:`~contrasent.data.batch.Batch`, ready for one step.

A batch of B rows with V views (text columns; 2 dropout views of one text in unsupervised mode) holds
N = V·B texts. They go through the encoder's tokenise-and-pad path (:mod:`contrasent.models.tokenization`):
tokenized together, sorted by token count and cut into chunks of ``chunk_size`` texts (or of at most
``chunk_tokens`` padded tokens), each padded only to its own longest member (or packed padding-free).
Running the encoder on each chunk and indexing the concatenated outputs with ``restore`` gives the (N, d)
embeddings in view-major order (view 0 rows 0..B-1, view 1 rows 0..B-1, ...). Padding per length-sorted
chunk wastes far less compute than padding every column to the batch's longest text, and transformer
encoders embed each sequence independently of its neighbours, so the embeddings are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from contrasent.data.batch import Batch
from contrasent.data.chunking import token_budget_chunks
from contrasent.data.columns import ColumnLayout
from contrasent.data.text_ids import text_ids
from contrasent.data.truncation import truncated_token_ids
from contrasent.models.tokenization import chunk_inputs, chunked_inputs, pad_token_id, restore_order

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

    ``__call__`` returns a :class:`~contrasent.data.batch.Batch`: ``class_labels`` when the layout has a
    label column, ``scores`` when it has a score column, ``row_ids`` when rows carry
    :data:`ROW_ID_COLUMN` (the trainer adds it, to name rows in errors).

    Texts longer than ``max_length`` tokens are truncated; the first batch that holds one logs a warning.
    The tokenizer sees only a prefix of each text (:mod:`contrasent.data.truncation`), so a huge text
    costs no more than one of a few thousand characters.
    """

    def __init__(
        self, tokenizer: Any, layout: ColumnLayout, max_length: int, chunk_size: int | None = None,
        padding_free: bool = False, chunk_tokens: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.layout = layout
        self.max_length = max_length
        self.chunk_size = chunk_size
        self.padding_free = padding_free
        self.chunk_tokens = chunk_tokens
        self.pad_id = pad_token_id(tokenizer)
        self.warned_truncation = False

    def __call__(self, rows: Sequence[dict[str, Any]]) -> Batch:
        columns = [[row[name] for row in rows] for name in self.layout.text_columns]
        if self.layout.mode == "unsupervised":
            columns = columns * 2  # the same texts twice: dropout makes the two views differ
        texts = [text for column in columns for text in column]
        token_ids, longer = truncated_token_ids(self.tokenizer, texts, self.max_length)
        if any(longer) and not self.warned_truncation:
            longest = max(len(text) for text, cut in zip(texts, longer) if cut)
            logger.warning("texts longer than max_seq_length=%d tokens are truncated (one in this batch has %d "
                           "characters); this warning is shown once", self.max_length, longest)
            self.warned_truncation = True
        if self.chunk_tokens is not None:
            groups = token_budget_chunks([len(ids) for ids in token_ids], self.chunk_tokens, self.chunk_size)
            chunks = [chunk_inputs([token_ids[i] for i in group], self.pad_id, self.padding_free) for group in groups]
            restore = restore_order(groups)
        else:
            chunk_size = self.chunk_size or (len(texts) if self.padding_free else len(rows))
            chunks, restore = chunked_inputs(token_ids, chunk_size, self.pad_id, self.padding_free)
        return Batch(
            chunks=chunks, restore=restore, num_views=len(columns),
            text_ids=torch.stack([text_ids(column) for column in columns]),
            class_labels=self._column(rows, self.layout.label_column, torch.long),
            scores=self._column(rows, self.layout.score_column, torch.float32),
            row_ids=self._column(rows, ROW_ID_COLUMN if ROW_ID_COLUMN in rows[0] else None, torch.long),
        )

    @staticmethod
    def _column(rows: Sequence[dict[str, Any]], name: str | None, dtype: torch.dtype) -> torch.Tensor | None:
        return None if name is None else torch.tensor([row[name] for row in rows], dtype=dtype)
