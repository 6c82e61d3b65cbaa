"""Calling any model's encode: options passed only where accepted, outputs turned into (n, dim) float32."""

from __future__ import annotations

import numpy as np
import pytest

from contrasent.models.encoding import accepted_options, encode_array


class OnlyTexts:
    def encode(self, texts):
        return [[len(t), 1.0] for t in texts]


class Named:
    def __init__(self) -> None:
        self.options: dict = {}

    def encode(self, texts, batch_size=32, normalize=None):
        self.options = {"batch_size": batch_size, "normalize": normalize}
        return np.ones((len(texts), 2))


class AnyKeywords:
    def encode(self, texts, **kwargs):
        self.options = kwargs
        return np.ones((len(texts), 2))


def test_options_are_passed_only_where_accepted() -> None:
    options = {"batch_size": 8, "show_progress_bar": False}
    assert accepted_options(OnlyTexts(), **options) == {}
    assert accepted_options(Named(), **options) == {"batch_size": 8}
    assert accepted_options(AnyKeywords(), **options) == options

    class Builtin:
        encode = len  # a signature inspect cannot read: nothing passed

    assert accepted_options(Builtin(), **options) == {}
    model = Named()
    encode_array(model, ["a"], batch_size=8, show_progress_bar=False)
    assert model.options == {"batch_size": 8, "normalize": None}


def test_outputs_become_float32_arrays() -> None:
    embeddings = encode_array(OnlyTexts(), ("ab", "c"))
    assert embeddings.dtype == np.float32 and embeddings.tolist() == [[2, 1], [1, 1]]
    torch = pytest.importorskip("torch")

    class Tensors:
        def encode(self, texts):
            return torch.ones(len(texts), 3, dtype=torch.float64, requires_grad=True)

    assert encode_array(Tensors(), ["x", "y"]).dtype == np.float32


@pytest.mark.parametrize("output", [[1.0, 2.0], [[1.0]], np.ones((2, 2, 2))])
def test_wrong_shapes_are_named(output) -> None:
    class Bad:
        def encode(self, texts):
            return output

    with pytest.raises(ValueError, match=r"Bad.encode returned shape .* for 2 texts"):
        encode_array(Bad(), ["x", "y"])
