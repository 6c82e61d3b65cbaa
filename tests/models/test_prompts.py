"""Prompts and ``truncate_dim`` on ``SentenceEncoder``, against sentence-transformers 6.2 itself (#16).

A saved folder must give, in sentence-transformers, the embeddings our ``encode`` gives with the same
prompt (both ``include_prompt`` settings, every pooling it has); a sentence-transformers folder with
prompts must load with them; ``truncate_dim`` keeps the first dimensions, as ``SentenceTransformer``
does, and is saved where it reads it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contrasent import SentenceEncoder
from contrasent.models.prompts import prompt_token_count

PROMPTS = {"query": "query: ", "document": "passage: "}
TEXTS = ["A man is playing a guitar on the stage tonight.", "Hello.", "Two dogs run in a field of tall grass."]


def sentence_transformer(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


@pytest.fixture(scope="module", params=["tiny", "minilm"])
def model_dir(request, tiny_bert_dir, minilm_dir):
    return tiny_bert_dir if request.param == "tiny" else minilm_dir


@pytest.mark.parametrize("include_prompt", [True, False])
@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_a_saved_folder_gives_sentence_transformers_our_prompted_embeddings(
        model_dir, tmp_path, include_prompt, pooling) -> None:
    encoder = SentenceEncoder.from_pretrained(model_dir, prompts=PROMPTS, include_prompt=include_prompt,
                                              pooling=pooling)
    encoder.save_pretrained(tmp_path / "model")
    theirs = sentence_transformer(tmp_path / "model")
    assert theirs.prompts["query"] == "query: " and theirs[1].include_prompt is include_prompt
    for name in ("query", "document"):
        ours = encoder.encode(TEXTS, prompt_name=name)
        np.testing.assert_allclose(ours, theirs.encode(TEXTS, prompt_name=name), atol=1e-5)
    np.testing.assert_allclose(encoder.encode(TEXTS, prompt="Represent this: "),
                               theirs.encode(TEXTS, prompt="Represent this: "), atol=1e-5)
    if not include_prompt and pooling != "max":  # the prompt's tokens are really left out
        assert not np.allclose(encoder.encode(TEXTS, prompt_name="query"),
                               encoder.encode(["query: " + text for text in TEXTS]), atol=1e-4)


def test_a_default_prompt_applies_when_none_is_given_in_both_libraries(tiny_bert_dir, tmp_path) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, prompts=PROMPTS, default_prompt_name="query")
    np.testing.assert_array_equal(encoder.encode(TEXTS), encoder.encode(TEXTS, prompt_name="query"))
    np.testing.assert_array_equal(encoder.encode(TEXTS, prompt=""), SentenceEncoder.from_pretrained(
        tiny_bert_dir).encode(TEXTS))  # an empty prompt overrides the default one
    encoder.save_pretrained(tmp_path / "model")
    np.testing.assert_allclose(encoder.encode(TEXTS), sentence_transformer(tmp_path / "model").encode(TEXTS),
                               atol=1e-5)
    reloaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert reloaded.prompts == PROMPTS and reloaded.config.default_prompt_name == "query"


def test_a_sentence_transformers_folder_with_prompts_loads_with_them(tiny_bert_dir, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(tiny_bert_dir))
    pooling = models.Pooling(transformer.get_embedding_dimension(), "mean", include_prompt=False)
    theirs = SentenceTransformer(modules=[transformer, pooling], prompts=PROMPTS, default_prompt_name="document",
                                 device="cpu")
    theirs.save_pretrained(str(tmp_path / "st"))
    ours = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert ours.prompts == PROMPTS and ours.config.default_prompt_name == "document"
    assert ours.config.include_prompt is False
    np.testing.assert_allclose(ours.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(ours.encode(TEXTS, prompt_name="query"), theirs.encode(TEXTS, prompt_name="query"),
                               atol=1e-5)


def test_given_prompts_are_added_to_the_folders_by_name(tiny_bert_dir, tmp_path) -> None:
    SentenceEncoder.from_pretrained(tiny_bert_dir, prompts=PROMPTS).save_pretrained(tmp_path / "model")
    encoder = SentenceEncoder.from_pretrained(tmp_path / "model", prompts={"query": "q: ", "title": "t: "})
    assert encoder.prompts == {"query": "q: ", "document": "passage: ", "title": "t: "}


def test_the_prompt_token_count_is_sentence_transformers_own(minilm_dir) -> None:
    theirs = sentence_transformer(minilm_dir)
    ours = SentenceEncoder.from_pretrained(minilm_dir)
    for prompt in ("query: ", "Represent the document for retrieval: ", "x"):
        assert prompt_token_count(ours.tokenizer, prompt) == theirs[0]._get_prompt_length(prompt)


def test_padding_free_forward_honours_include_prompt(tiny_bert_dir) -> None:
    from contrasent.models.padding_free import pack
    from contrasent.models.tokenization import pad

    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, include_prompt=False).eval()
    ids = encoder.tokenizer(["query: " + text for text in TEXTS])["input_ids"]
    ids = sorted(ids, key=len)
    prompt_lengths = torch.tensor([4, 3, 0])
    with torch.no_grad():
        padded = encoder(**pad(ids, 0), prompt_lengths=prompt_lengths)
        packed = encoder(**pack(ids), prompt_lengths=prompt_lengths)
        whole = encoder(**pad(ids, 0))
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed[2], whole[2], atol=1e-5, rtol=0)
    assert not torch.allclose(packed[0], whole[0], atol=1e-4)


@pytest.mark.parametrize("call, pattern", [
    (lambda e: e.encode(TEXTS, prompt_name="title"),
     r"prompt_name 'title' is not one of this model's prompts: \['document', 'query'\]"),
    (lambda e: e.encode(TEXTS, prompt_name="query", prompt="q: "), r"give prompt or prompt_name, not both"),
    (lambda e: e.encode(TEXTS, truncate_dim=0),
     r"truncate_dim must be in 1\.\.32 \(the model's embedding dimension\), got 0"),
    (lambda e: e.encode(TEXTS, truncate_dim=33), r"truncate_dim must be in 1\.\.32.*got 33"),
])
def test_bad_prompt_and_truncate_dim_arguments_are_named(tiny_bert_dir, call, pattern) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, prompts=PROMPTS)
    with pytest.raises(ValueError, match=pattern):
        call(encoder)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"truncate_dim": 64}, r"truncate_dim must be in 1\.\.32 \(the model's embedding dimension\), got 64"),
    ({"truncate_dim": -1}, r"truncate_dim must be a positive integer, got -1"),
    ({"prompts": PROMPTS, "default_prompt_name": "title"}, r"default_prompt_name 'title' is not one of"),
])
def test_bad_settings_are_refused_when_loading(tiny_bert_dir, kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        SentenceEncoder.from_pretrained(tiny_bert_dir, **kwargs)


@pytest.mark.parametrize("normalize", [False, True])
def test_truncate_dim_matches_sentence_transformers(minilm_dir, tmp_path, normalize) -> None:
    """all-MiniLM-L6-v2 normalizes: sentence-transformers truncates after its Normalize module and
    re-normalizes only with normalize_embeddings=True; contrasent re-normalizes a normalizing model's."""
    theirs = sentence_transformer(minilm_dir)
    ours = SentenceEncoder.from_pretrained(minilm_dir)
    expected = theirs.encode(TEXTS, truncate_dim=64, normalize_embeddings=True)
    np.testing.assert_allclose(ours.encode(TEXTS, truncate_dim=64), expected, atol=1e-5)
    np.testing.assert_allclose(ours.encode(TEXTS, truncate_dim=64, normalize=False),
                               theirs.encode(TEXTS, truncate_dim=64), atol=1e-5)
    truncated = SentenceEncoder.from_pretrained(minilm_dir, truncate_dim=64, normalize=normalize)
    assert truncated.embedding_dim == 64
    truncated.save_pretrained(tmp_path / "model")
    settings = json.loads((tmp_path / "model" / "config_sentence_transformers.json").read_text())
    assert settings["truncate_dim"] == 64
    reread = sentence_transformer(tmp_path / "model")
    assert reread.truncate_dim == 64 and reread.get_embedding_dimension() == 64
    np.testing.assert_allclose(truncated.encode(TEXTS), reread.encode(TEXTS, normalize_embeddings=normalize),
                               atol=1e-5)
    assert SentenceEncoder.from_pretrained(tmp_path / "model").config.truncate_dim == 64
