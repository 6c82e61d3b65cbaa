"""What ``encode`` accepts (issue #15, class 6), and a huge text costs what ``max_length`` allows (class 9)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from contrasent import SentenceEncoder
from contrasent.models.tokenization import tokenize

TEXTS = ["A man is playing a guitar.", "Dogs run.", "The quick brown fox jumps over the lazy dog."]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


@pytest.mark.parametrize("make", [
    lambda: (text for text in TEXTS),  # a generator: read once
    lambda: iter(TEXTS),
    lambda: tuple(TEXTS),
    lambda: collections.deque(TEXTS),
    lambda: np.array(TEXTS),
    lambda: dict.fromkeys(TEXTS).keys(),  # ordered
], ids=["generator", "iterator", "tuple", "deque", "numpy", "dict keys"])
def test_any_ordered_iterable_of_strings_is_encoded_in_order(encoder, make) -> None:
    np.testing.assert_array_equal(encoder.encode(make()), encoder.encode(TEXTS))


@pytest.mark.parametrize(("texts", "pattern"), [
    (None, r"texts is None; expected a string or an iterable of strings"),
    (b"x", r"texts is bytes, not text: decode it first"),
    (bytearray(b"x"), r"texts is bytearray, not text: decode it first"),
    (42, r"texts is int; expected a string or an iterable of strings"),
    ({"a", "b"}, r"texts is a set, which has no order"),
    (frozenset({"a"}), r"texts is a frozenset, which has no order"),
    ({"q1": "a text"}, r"texts is a dict; pass its texts as a list"),
    (["a", b"b"], r"texts\[1\] is bytes, expected str: decode it first"),
    ((t for t in ["a", None]), r"texts\[1\] is NoneType, expected str"),
])
def test_what_is_not_texts_is_refused_saying_what_to_pass(encoder, texts, pattern) -> None:
    with pytest.raises(TypeError, match=pattern):
        encoder.encode(texts)


@pytest.mark.parametrize("text", ["abc\ud800", "\udcff at the start", "é then \udfff"])
def test_a_lone_surrogate_is_named_by_position(encoder, text) -> None:
    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate '\\ud[8-f][0-9a-f]{2}' at character \d+"):
        encoder.encode(["fine", text])


@pytest.mark.parametrize(("options", "error", "pattern"), [
    ({"batch_size": "32"}, TypeError, r"batch_size must be a positive integer, got str '32'"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be a positive integer, got float 2.5"),
    ({"batch_size": True}, TypeError, r"batch_size must be a positive integer, got bool True"),
    ({"batch_size": -1}, ValueError, r"batch_size must be a positive integer, got -1"),
    ({"max_length": 0}, ValueError, r"max_length must be a positive integer, got 0"),
    ({"max_length": 8.0}, TypeError, r"max_length must be a positive integer, got float 8.0"),
    ({"normalize": "no"}, TypeError, r"normalize must be True, False or None \(the model's setting\), got 'no'"),
    ({"max_length": 100_000}, ValueError, (r"max_length=100000 is more than BertModel can take: its position "
                                          r"embeddings end at 512 tokens")),
])
def test_bad_encode_arguments_are_named(encoder, options, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        encoder.encode(TEXTS, **options)


class RecordingTokenizer:
    """The encoder's tokenizer, recording the longest text it was given."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.longest = 0

    def __call__(self, texts, **kwargs):
        self.longest = max([self.longest, *map(len, texts)])
        return self.tokenizer(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __len__(self) -> int:
        return len(self.tokenizer)


@pytest.mark.parametrize("huge", [
    "word " * 6_000_000,  # 30 MB of words
    " " * 30_000_000 + "x",  # 30 MB of spaces, then a word
], ids=["words", "spaces"])
def test_a_huge_text_is_read_only_up_to_the_character_budget(tiny_bert_dir, huge) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, max_seq_length=128)
    encoder.tokenizer = recording = RecordingTokenizer(encoder.tokenizer)
    embedding = encoder.encode(["a short one", huge])
    assert recording.longest == 128 * 100  # character_budget(128): the tokenizer never saw the 30 MB
    assert np.isfinite(embedding).all()


def test_the_budget_changes_no_token_of_real_text(encoder, data_dir) -> None:
    """Real sentences run together far beyond the budget: the kept tokens are those of the whole text."""
    with open(data_dir / "stsbenchmark" / "sts-dev.csv", encoding="utf-8") as file:
        text = " ".join(line.split("\t")[5] for line in file)
    for max_length in (8, 128, 512):
        assert len(text) > max_length * 100  # character_budget(max_length): the text is cut
        whole = encoder.tokenizer([text], truncation=True, max_length=max_length)["input_ids"]
        assert tokenize(encoder.tokenizer, [text], max_length) == whole
