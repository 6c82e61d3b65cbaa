"""Truncation before tokenising (issue #15, class 9): a huge text costs what a text of a few thousand
characters costs, and the ids are those of tokenising the whole text and truncating."""

from __future__ import annotations

import logging

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.data.truncation import MAX_CHARS_PER_TOKEN, truncated_token_ids
from contrasent.models.tokenization import tokenize


class WatchedTokenizer:
    """A tokenizer that fails the test when it is given a text longer than ``limit`` characters."""

    def __init__(self, tokenizer, limit: int) -> None:
        self.tokenizer, self.limit, self.calls = tokenizer, limit, 0

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __call__(self, texts, **kwargs):
        self.calls += 1
        longest = max(map(len, texts), default=0)
        assert longest <= self.limit, f"the tokenizer was given a text of {longest} characters"
        return self.tokenizer(texts, **kwargs)


@pytest.mark.parametrize("line", [
    "lorem ipsum dolor sit amet " * 1_200_000,  # the 30 MB line, in words
    "x" * 30_000_000,  # one unbroken "word"
    "a" + " " * 30_000_000 + "b",  # whitespace that tokenises to nothing
])
def test_a_huge_text_costs_no_more_than_the_bound(tiny_bert_dir, caplog, line) -> None:
    max_length = 32
    tokenizer = WatchedTokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), limit=max_length * MAX_CHARS_PER_TOKEN)
    collator = ContrastiveCollator(tokenizer, infer_layout(["text"]), max_length=max_length)
    with caplog.at_level(logging.WARNING):
        batch = collator([{"text": line}, {"text": "a short one"}])
    assert max(chunk["input_ids"].shape[-1] for chunk in batch.chunks) <= max_length
    assert f"texts longer than max_seq_length={max_length} tokens are truncated (one in this batch has {len(line)} " \
           "characters)" in caplog.text


def trained_tokenizer(kind: str, lines: list[str]) -> PreTrainedTokenizerFast:
    """A small byte-level BPE (GPT-2 / RoBERTa style) or metaspace Unigram (SentencePiece / T5 style)."""
    if kind == "byte_level_bpe":
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "</s>", "<pad>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        single = "<s> $A </s>"
    else:
        backend = Tokenizer(models.Unigram())
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        backend.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=600, special_tokens=["<s>", "</s>", "<pad>", "<unk>"],
                                          unk_token="<unk>")
        single = "$A </s>"
    backend.train_from_iterator(lines, trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", backend.token_to_id("<s>")), ("</s>", backend.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


@pytest.fixture(scope="module")
def wiki_lines(data_dir) -> list[str]:
    path = data_dir / "wiki1m_prefix" / "wiki1m_for_simcse.first11914.txt"
    return path.read_text(encoding="utf-8").splitlines()[:400]


def long_texts(lines: list[str]) -> list[str]:
    """Texts around and far beyond every budget, with odd spacing, CJK, long words and URLs."""
    paragraphs = [" ".join(lines[i:i + n]) for i, n in ((0, 1), (1, 3), (4, 10), (14, 40), (54, 150), (204, 190))]
    odd = ["word  \t double\n\nspaces " * 300, "长文本没有空格" * 500 + " and then words " * 50,
           ("https://example.com/" + "a" * 300 + " ") * 40, "supercalifragilistic" * 100 + " end " * 200,
           " leading and trailing spaces " * 100 + "   "]
    return paragraphs + odd


@pytest.mark.parametrize("kind", ["wordpiece_tiny_bert", "wordpiece_minilm", "byte_level_bpe", "metaspace_unigram"])
@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_the_ids_are_those_of_the_whole_text_truncated(kind, max_length, wiki_lines, tiny_bert_dir,
                                                       minilm_dir) -> None:
    if kind.startswith("wordpiece"):
        tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir if kind.endswith("tiny_bert") else minilm_dir)
    else:
        tokenizer = trained_tokenizer(kind, wiki_lines)
    texts = long_texts(wiki_lines)
    ids, longer = truncated_token_ids(tokenizer, texts, max_length)
    assert ids == tokenize(tokenizer, texts, max_length)
    assert longer == [len(full) > max_length for full in tokenize(tokenizer, texts, 10**6)]


def test_left_truncation_keeps_the_end(wiki_lines) -> None:
    tokenizer = trained_tokenizer("byte_level_bpe", wiki_lines)
    tokenizer.truncation_side = "left"
    texts = long_texts(wiki_lines)
    ids, _ = truncated_token_ids(tokenizer, texts, 16)
    assert ids == tokenize(tokenizer, texts, 16)


def test_each_distinct_text_is_tokenised_once(tiny_bert_dir) -> None:
    tokenizer = WatchedTokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), limit=10**9)
    seen = []
    call = tokenizer.tokenizer.__call__
    tokenizer.tokenizer = lambda texts, **kwargs: (seen.extend(texts), call(texts, **kwargs))[1]
    ids, longer = truncated_token_ids(tokenizer, ["same text", "other", "same text"], 16)
    assert seen == ["same text", "other"] and ids[0] == ids[2] and longer == [False] * 3
