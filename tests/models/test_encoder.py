"""`SentenceEncoder.encode`: order, batching, precision, input checks, on the tiny real BERT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrasent import SentenceEncoder
from contrasent.models.tokenization import pad, pad_token_id, tokenize

TEXTS = [
    "A man is playing a guitar.",
    "A woman slices an onion on a wooden board while music plays in the background.",
    "Dogs run.",
    "",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn, twice.",
]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


def one_by_one(encoder: SentenceEncoder, texts: list[str]) -> np.ndarray:
    return np.stack([encoder.encode([text])[0] for text in texts])


def test_plain_checkpoint_defaults_to_mean_pooling(encoder) -> None:
    assert encoder.config.pooling == "mean"
    assert not encoder.config.normalize and encoder.head is None


def test_results_come_back_in_input_order_whatever_the_batch_size(encoder) -> None:
    reference = one_by_one(encoder, TEXTS)
    for batch_size in (1, 2, 32):
        got = encoder.encode(TEXTS, batch_size=batch_size)
        # Padding must not change a text's embedding: batched = alone, to float32 rounding.
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5)


def test_output_types_and_shapes(encoder) -> None:
    as_numpy = encoder.encode(TEXTS)
    as_torch = encoder.encode(TEXTS, convert_to="torch")
    assert as_numpy.dtype == np.float32 and as_numpy.shape == (5, encoder.embedding_dim)
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    np.testing.assert_array_equal(as_torch.numpy(), as_numpy)


def test_empty_list_gives_zero_rows(encoder) -> None:
    assert encoder.encode([]).shape == (0, encoder.embedding_dim)


def test_a_bare_string_is_one_text(encoder) -> None:
    np.testing.assert_array_equal(encoder.encode("Dogs run."), encoder.encode(["Dogs run."]))


@pytest.mark.parametrize("bad", [None, 3, b"bytes"])
def test_non_string_items_are_named_by_index(encoder, bad) -> None:
    with pytest.raises(TypeError, match=rf"texts\[2\] is {type(bad).__name__}, expected str"):
        encoder.encode(["a", "b", bad])


def test_normalize_gives_unit_vectors(encoder) -> None:
    norms = np.linalg.norm(encoder.encode(TEXTS, normalize=True), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


def test_truncation_to_max_length(encoder) -> None:
    long = "word " * 600
    short = encoder.encode([long], max_length=8)
    assert np.isfinite(short).all()
    prefix = encoder.tokenizer.decode(encoder.tokenizer(long, max_length=8, truncation=True)["input_ids"][1:-1])
    np.testing.assert_allclose(short, encoder.encode([prefix]), atol=1e-5)


def test_bfloat16_is_close_to_float32(encoder) -> None:
    full = encoder.encode(TEXTS, normalize=True)
    half = encoder.encode(TEXTS, normalize=True, dtype="bfloat16")
    assert (full * half).sum(axis=1).min() > 0.99


def test_encode_restores_training_mode(encoder) -> None:
    encoder.train()
    encoder.encode(["x"])
    assert encoder.training
    encoder.eval()


def test_bad_arguments(encoder) -> None:
    with pytest.raises(ValueError, match="convert_to"):
        encoder.encode(["x"], convert_to="list")
    with pytest.raises(ValueError, match="dtype"):
        encoder.encode(["x"], dtype="int8")
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["x"], batch_size=0)


def test_progress_bar_for_long_inputs(encoder, capsys) -> None:
    encoder.encode(["a short text"] * 40, batch_size=8, show_progress_bar=True)
    assert "Encoding" in capsys.readouterr().err


def test_forward_keeps_gradients_and_uses_the_head_in_training(tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="cls", head=True, head_at_inference=False)
    batch = pad(tokenize(encoder.tokenizer, TEXTS[:2], 32), pad_token_id(encoder.tokenizer))
    encoder.train()
    trained = encoder(batch["input_ids"], batch["attention_mask"])
    trained.sum().backward()
    assert encoder.head.linear.weight.grad is not None
    encoder.eval()
    with torch.no_grad():
        inferred = encoder(batch["input_ids"], batch["attention_mask"])
        pooled = encoder.backbone(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(inferred, pooled)  # head dropped at inference
