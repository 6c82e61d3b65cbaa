"""The one tokenise-and-pad path (`contrasent.models.tokenization`) that `encode` and the collator share."""

from __future__ import annotations

import pytest
import torch

from contrasent import SentenceEncoder
from contrasent.models.tokenization import (
    chunk_inputs,
    length_sorted_chunks,
    pad,
    pad_token_id,
    restore_order,
    tokenize,
)


def test_length_sorted_chunks_are_stable_in_both_directions():
    lengths = [3, 1, 3, 2, 1]
    assert length_sorted_chunks(lengths, 2) == [[1, 4], [3, 0], [2]]
    assert length_sorted_chunks(lengths, 2, longest_first=True) == [[0, 2], [3, 1], [4]]
    assert length_sorted_chunks([], 2) == []
    with pytest.raises(ValueError, match="chunk_size"):
        length_sorted_chunks(lengths, 0)


def test_pad_and_restore_order():
    padded = pad([[5, 6, 7], [8]], pad_id=0)
    assert padded["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert padded["input_ids"].dtype == padded["attention_mask"].dtype == torch.int64
    chunks = [[1, 4], [3, 0], [2]]
    rows = torch.tensor([index for chunk in chunks for index in chunk])
    assert rows[restore_order(chunks)].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("padding_free", [False, True])
def test_length_sorted_chunks_hold_every_text_once(tiny_bert_dir, padding_free):
    tokenizer = SentenceEncoder.from_pretrained(tiny_bert_dir).tokenizer
    texts = ["a much longer sentence than the others here", "hi", "two words", "hello there friend"]
    token_ids = tokenize(tokenizer, texts, max_length=6)
    assert max(len(ids) for ids in token_ids) == 6  # truncated, special tokens included
    groups = length_sorted_chunks([len(ids) for ids in token_ids], 3)
    chunks = [chunk_inputs([token_ids[i] for i in group], pad_token_id(tokenizer), padding_free) for group in groups]
    restore = restore_order(groups)
    assert len(chunks) == 2
    if padding_free:
        rows = [ids.tolist() for chunk in chunks
                for ids in chunk["input_ids"][0].split(chunk["sequence_lengths"].tolist())]
    else:
        rows = [ids[mask.bool()].tolist() for chunk in chunks
                for ids, mask in zip(chunk["input_ids"], chunk["attention_mask"])]
    assert [len(ids) for ids in rows] == sorted(len(ids) for ids in token_ids)  # shortest first
    assert [rows[i] for i in restore] == token_ids
