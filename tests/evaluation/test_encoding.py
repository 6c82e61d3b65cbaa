"""The encode adapter: any object with encode(list[str]), clear errors on bad outputs."""

from __future__ import annotations

import numpy as np
import pytest

from contrasent.evaluation import encode_texts


class Lengths:
    """Embeds a text as (length, 1); records the calls and accepts only a list of texts."""

    def __init__(self, output=None) -> None:
        self.calls: list[list[str]] = []
        self.output = output

    def encode(self, texts):
        self.calls.append(texts)
        return self.output if self.output is not None else [[len(t), 1.0] for t in texts]


def test_order_is_kept_duplicates_encoded_once_and_batches_longest_first():
    model = Lengths()
    texts = ["bb", "a", "dddd", "a", "ccc"]
    embeddings = encode_texts(model, texts, batch_size=2, show_progress_bar=False)
    assert embeddings.dtype == np.float32
    assert embeddings[:, 0].tolist() == [2, 1, 4, 1, 3]
    assert model.calls == [["dddd", "ccc"], ["bb", "a"]]


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")

    class TorchModel:
        def encode(self, texts, batch_size=32, show_progress_bar=None):
            assert show_progress_bar is False and batch_size == 8
            return torch.ones(len(texts), 3, requires_grad=True)

    assert encode_texts(TorchModel(), ["x", "y"], batch_size=8, show_progress_bar=False).shape == (2, 3)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (object(), TypeError, "expected a model with an encode"),
        (Lengths(output=[1.0, 2.0]), ValueError, r"returned shape \(2,\) for 2 texts"),
        (Lengths(output=[[np.nan], [1.0]]), ValueError, r"non-finite values \(NaN or inf\) for the text 'yy'"),
    ],
)
def test_bad_models_raise(model, error, message):
    with pytest.raises(error, match=message):
        encode_texts(model, ["x", "yy"], show_progress_bar=False)
