"""`ContrastiveCollator`: rows of texts -> token chunks of similar length, ready for one step.

A batch of B rows with V views (text columns; 2 dropout views of one text in unsupervised mode) holds
N = V·B texts. They are tokenized together, sorted by token count and cut into chunks of
``chunk_size`` texts, each padded only to its own longest member. Running the encoder on each chunk
and indexing the concatenated outputs with ``restore`` gives the (N, d) embeddings in view-major order
(view 0 rows 0..B-1, view 1 rows 0..B-1, ...). Padding per length-sorted chunk wastes far less compute
than padding every column to the batch's longest text, and transformer encoders embed each sequence
independently of its neighbours, so the embeddings are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from contrasent.data.columns import ColumnLayout
from contrasent.data.text_ids import text_ids
from contrasent.models import padding_free

logger = logging.getLogger(__name__)

ROW_ID_COLUMN = "__row_id__"


class ContrastiveCollator:
    """Collate dataset rows into the inputs of ``ContrastiveTrainer.compute_loss``.

    Args:
        tokenizer: a (fast) transformers tokenizer.
        layout: the column roles (:class:`~contrasent.data.ColumnLayout`).
        max_length: truncate texts to this many tokens.
        chunk_size: texts per forward pass (default: the batch's row count B, so a step runs V passes;
            padding-free, all N texts in one pass).
        padding_free: emit each chunk as one unpadded row (:mod:`contrasent.models.padding_free`) instead of a
            padded (chunk, T_chunk) tensor; only for encoders that support it (the trainer checks).

    Returns (from ``__call__``) a dict:
        ``features``: list of {``input_ids``, ``attention_mask``} (chunk, T_chunk) int64 tensors, or
        padding-free, of {``input_ids`` (1, Σ L_i), ``sequence_lengths`` (chunk,)};
        ``restore``: (N,) int64, ``cat(chunk outputs)[restore]`` is view-major;
        ``num_views``: V; ``text_ids``: (V, B) int64 stable ids of the texts (duplicate detection);
        ``class_labels``: (B,) int64 when the layout has a label column; ``scores``: (B,) float32 when it
        has a score column; ``row_ids``: (B,) int64 dataset row numbers when rows carry
        :data:`ROW_ID_COLUMN` (the trainer adds it, to name rows in errors).

    Texts longer than ``max_length`` tokens are truncated; the first batch that holds one logs a warning.
    """

    def __init__(
        self, tokenizer: Any, layout: ColumnLayout, max_length: int, chunk_size: int | None = None,
        padding_free: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.layout = layout
        self.max_length = max_length
        self.chunk_size = chunk_size
        self.padding_free = padding_free
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.warned_truncation = False

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        columns = [[row[name] for row in rows] for name in self.layout.text_columns]
        if self.layout.mode == "unsupervised":
            columns = columns * 2  # the same texts twice: dropout makes the two views differ
        texts = [text for column in columns for text in column]
        token_ids = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=False,
            return_attention_mask=False, return_token_type_ids=False,
        )["input_ids"]
        if not self.warned_truncation:
            self._warn_if_truncated(texts, token_ids)
        batch: dict[str, Any] = {
            **self.chunks(token_ids, self.chunk_size or (len(texts) if self.padding_free else len(rows))),
            "num_views": len(columns),
            "text_ids": torch.stack([text_ids(column) for column in columns]),
        }
        if self.layout.label_column is not None:
            batch["class_labels"] = torch.tensor([row[self.layout.label_column] for row in rows], dtype=torch.long)
        if self.layout.score_column is not None:
            batch["scores"] = torch.tensor([row[self.layout.score_column] for row in rows], dtype=torch.float32)
        if ROW_ID_COLUMN in rows[0]:
            batch["row_ids"] = torch.tensor([row[ROW_ID_COLUMN] for row in rows], dtype=torch.long)
        return batch

    def _warn_if_truncated(self, texts: list[str], token_ids: list[list[int]]) -> None:
        """Warn once when a text was cut: only texts that reached the limit are tokenized again, in full."""
        at_limit = [text for text, ids in zip(texts, token_ids) if len(ids) >= self.max_length]
        if not at_limit:
            return
        full = self.tokenizer(at_limit, truncation=False, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]
        longest = max(len(ids) for ids in full)
        if longest > self.max_length:
            logger.warning("texts longer than max_seq_length=%d tokens are truncated (one in this batch has %d); "
                           "this warning is shown once", self.max_length, longest)
            self.warned_truncation = True

    def chunks(self, token_ids: list[list[int]], chunk_size: int) -> dict[str, Any]:
        """Length-sorted token tensors per chunk (padded, or packed when padding-free) and the permutation
        that undoes the sort."""
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        features = []
        for start in range(0, len(order), chunk_size):
            members = [token_ids[i] for i in order[start:start + chunk_size]]
            if self.padding_free:
                features.append(padding_free.pack(members))
                continue
            length = max(len(ids) for ids in members)
            input_ids = torch.full((len(members), length), self.pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(members), length), dtype=torch.long)
            for row, ids in enumerate(members):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention_mask[row, : len(ids)] = 1
            features.append({"input_ids": input_ids, "attention_mask": attention_mask})
        restore = torch.empty(len(order), dtype=torch.long)
        restore[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return {"features": features, "restore": restore}
