"""Chunks by a token budget (``--mini_batch_tokens``): every padded chunk within the budget, greedy, length
sorted; the collator's chunks keep the embeddings."""

from __future__ import annotations

import random

import pytest
import torch

from contrasent import SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.data.chunking import token_budget_chunks


def padded_size(chunk: list[int], lengths: list[int]) -> int:
    return max(lengths[i] for i in chunk) * len(chunk)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("budget", "max_texts"), [(64, None), (100, None), (100, 3), (7, None), (1000, 5)])
def test_chunks_respect_the_budget_and_are_greedy(seed, budget, max_texts):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 80) for _ in range(rng.randint(1, 40))]
    chunks = token_budget_chunks(lengths, budget, max_texts)
    flat = [i for chunk in chunks for i in chunk]
    assert sorted(flat) == list(range(len(lengths)))  # every text once
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first
    for number, chunk in enumerate(chunks):
        assert len(chunk) == 1 or padded_size(chunk, lengths) <= budget
        assert max_texts is None or len(chunk) <= max_texts
        if number + 1 < len(chunks):  # greedy: the next text would not have fitted
            grown = chunk + chunks[number + 1][:1]
            assert padded_size(grown, lengths) > budget or len(chunk) == max_texts


def test_a_text_longer_than_the_budget_is_a_chunk_of_its_own():
    assert token_budget_chunks([3, 50, 3, 40], 20) == [[0, 2], [3], [1]]


@pytest.mark.parametrize(("budget", "max_texts", "message"), [(0, None, "max_tokens"), (8, 0, "max_texts")])
def test_bad_limits_are_refused(budget, max_texts, message):
    with pytest.raises(ValueError, match=message):
        token_budget_chunks([1, 2], budget, max_texts)


ROWS = [
    {"anchor": "a man plays a guitar on the street corner", "positive": "someone plays music", "negative": "no"},
    {"anchor": "dogs", "positive": "two dogs run across a wide green field together", "negative": "cats sleep"},
    {"anchor": "the sky is blue today", "positive": "clear weather", "negative": "it rains heavily all day"},
]


@pytest.mark.parametrize("padding_free", [False, True])
def test_collator_chunks_by_tokens_keep_the_embeddings(tiny_bert_dir, padding_free) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir).eval()
    layout = infer_layout(["anchor", "positive", "negative"])
    collator = ContrastiveCollator(encoder.tokenizer, layout, max_length=32, chunk_tokens=24,
                                   padding_free=padding_free)
    batch = collator(ROWS)
    reference = ContrastiveCollator(encoder.tokenizer, layout, max_length=32, padding_free=padding_free)(ROWS)
    if padding_free:
        sizes = [chunk["sequence_lengths"] for chunk in batch.chunks]
        padded = [int(lengths.max()) * len(lengths) for lengths in sizes]
    else:
        padded = [chunk["input_ids"].numel() for chunk in batch.chunks]
    assert len(batch.chunks) > 2 and all(size <= 24 for size in padded)
    with torch.no_grad():
        got = torch.cat([encoder(**chunk) for chunk in batch.chunks])[batch.restore]
        want = torch.cat([encoder(**chunk) for chunk in reference.chunks])[reference.restore]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
