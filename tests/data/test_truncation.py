"""The collator's tokenizing is bounded (issue #15, class 9): a huge text costs what a text of a few thousand
characters costs, the truncation warning included, and the ids are those of tokenizing the whole text."""

from __future__ import annotations

import logging

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.data.truncation import truncated_token_ids
from contrasent.models.tokenization import character_budget, tokenize


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
    tokenizer = WatchedTokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), limit=character_budget(max_length + 1))
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
    """Texts around and far beyond every budget: prose, odd spacing, URLs, long words."""
    paragraphs = [" ".join(lines[i:i + n]) for i, n in ((0, 1), (1, 3), (4, 10), (14, 40), (54, 150), (204, 190))]
    odd = ["word  \t double\n\nspaces " * 300, ("https://example.com/" + "a" * 300 + " ") * 40,
           "supercalifragilistic " * 300, " leading and trailing spaces " * 100 + "   "]
    return paragraphs + odd


# more than 100 characters a token: an unbroken "word" of 2000 characters, CJK without spaces
BEYOND_THE_BUDGET = ["supercalifragilistic" * 100 + " end " * 200, "长文本没有空格" * 500 + " and then words " * 50]


def tokenizer_of(kind: str, wiki_lines: list[str], tiny_bert_dir, minilm_dir):
    if kind.startswith("wordpiece"):
        return AutoTokenizer.from_pretrained(tiny_bert_dir if kind.endswith("tiny_bert") else minilm_dir)
    return trained_tokenizer(kind, wiki_lines)


KINDS = ["wordpiece_tiny_bert", "wordpiece_minilm", "byte_level_bpe", "metaspace_unigram"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_the_ids_are_those_of_the_whole_text_truncated(kind, max_length, wiki_lines, tiny_bert_dir,
                                                       minilm_dir) -> None:
    tokenizer = tokenizer_of(kind, wiki_lines, tiny_bert_dir, minilm_dir)
    texts = long_texts(wiki_lines)
    ids, longer = truncated_token_ids(tokenizer, texts, max_length)
    assert ids == tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert longer == [len(full) > max_length for full in tokenizer(texts)["input_ids"]]


@pytest.mark.parametrize("kind", KINDS)
def test_the_ids_are_those_of_the_one_tokenize_path(kind, wiki_lines, tiny_bert_dir, minilm_dir) -> None:
    tokenizer = tokenizer_of(kind, wiki_lines, tiny_bert_dir, minilm_dir)
    texts = long_texts(wiki_lines) + BEYOND_THE_BUDGET  # what encode embeds is what training trains on
    ids, longer = truncated_token_ids(tokenizer, texts, 8)
    assert ids == tokenize(tokenizer, texts, 8) and all(longer[-2:])


def test_each_distinct_text_is_tokenised_once(tiny_bert_dir) -> None:
    tokenizer = WatchedTokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), limit=10**9)
    seen = []
    call = tokenizer.tokenizer.__call__
    tokenizer.tokenizer = lambda texts, **kwargs: (seen.extend(texts), call(texts, **kwargs))[1]
    ids, longer = truncated_token_ids(tokenizer, ["same text", "other", "same text"], 16)
    assert seen == ["same text", "other"] and ids[0] == ids[2] and longer == [False] * 3
