"""Every pooling mode against a result computed by hand, on a small random BERT and on fixed tensors."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from contrasent import EncoderConfig, SentenceEncoder
from contrasent.models.pooling import POOLING_MODES, pool


@pytest.fixture(scope="module")
def tiny_model() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    # Row 0 is full length; row 1 has two padding positions at the end.
    return {
        "input_ids": torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    }


def expected(mode: str, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
    """The pooled vectors, one row and one dimension at a time, by explicit loops."""
    last = hidden_states[-1]
    rows = []
    for b in range(last.shape[0]):
        tokens = [t for t in range(last.shape[1]) if mask[b, t] == 1]
        row = []
        for d in range(last.shape[2]):
            if mode == "cls":
                row.append(last[b, 0, d].item())
            elif mode == "mean":
                row.append(sum(last[b, t, d].item() for t in tokens) / len(tokens))
            elif mode == "max":
                row.append(max(last[b, t, d].item() for t in tokens))
            elif mode == "last_token":
                row.append(last[b, tokens[-1], d].item())
            else:
                other = hidden_states[1] if mode == "first_last_avg" else hidden_states[-2]
                row.append(sum((other[b, t, d].item() + last[b, t, d].item()) / 2 for t in tokens) / len(tokens))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_pooling_matches_hand_computation_on_a_bert(mode, tiny_model, batch) -> None:
    encoder = SentenceEncoder(tiny_model, tokenizer=None, config=EncoderConfig(pooling=mode)).eval()
    with torch.no_grad():
        hidden = tiny_model(**batch, output_hidden_states=True).hidden_states
        got = encoder(batch["input_ids"], batch["attention_mask"])
    assert len(hidden) == 4  # embeddings + 3 layers: first_last_avg and last2_avg read different layers
    torch.testing.assert_close(got.double(), expected(mode, hidden, batch["attention_mask"]), rtol=1e-6, atol=1e-6)


def test_pooling_on_fixed_numbers() -> None:
    # One sequence, 3 tokens, the last is padding; hidden size 2.
    last = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])
    first = torch.tensor([[[5.0, 0.0], [-1.0, 2.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    layers = (torch.zeros_like(last), first, torch.zeros_like(last), last)
    assert pool("cls", last, mask).tolist() == [[1.0, -2.0]]
    assert pool("mean", last, mask).tolist() == [[2.0, 1.0]]
    assert pool("max", last, mask).tolist() == [[3.0, 4.0]]
    assert pool("last_token", last, mask).tolist() == [[3.0, 4.0]]
    assert pool("first_last_avg", last, mask, layers).tolist() == [[2.0, 1.0]]  # ((1+5)/2 + (3-1)/2)/2, ...
    assert pool("last2_avg", last, mask, layers).tolist() == [[1.0, 0.5]]  # layer -2 is zeros


def test_last_token_handles_left_padding() -> None:
    last = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[0, 1, 1], [1, 1, 0]])
    assert pool("last_token", last, mask).tolist() == [[4.0, 5.0], [8.0, 9.0]]


def test_unknown_pooling_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown pooling 'avg'.*cls, mean, max, first_last_avg, last2_avg, last_token"):
        EncoderConfig(pooling="avg")


def test_layer_averages_need_hidden_states() -> None:
    last = torch.zeros(1, 2, 2)
    with pytest.raises(ValueError, match="needs the hidden states"):
        pool("last2_avg", last, torch.ones(1, 2))
