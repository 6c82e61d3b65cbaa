"""Every loss stays finite (value and gradient) in the corner cases, and computes in at least float32."""

from __future__ import annotations

import warnings

import pytest
import torch
from loss_calls import SHARP, call_loss

from contrasent.losses import LOSSES, get_loss

NAMES = sorted(LOSSES)
LABELS = torch.tensor([0, 1, 0, 2, 1, 0])


def _value_and_grad(loss, x, labels):
    x = x.detach().requires_grad_()
    value = call_loss(loss, x, labels)
    (grad,) = torch.autograd.grad(value, x)
    return value, grad


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["identical", "zeros", "huge"])
def test_finite_for_degenerate_embeddings_at_low_temperature(name, case):
    row = torch.randn(1, 8, dtype=torch.float64)
    x = {"identical": row.repeat(6, 1), "zeros": torch.zeros(6, 8), "huge": 1e4 * torch.randn(6, 8)}[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a batch with valid anchors must not warn
        value, grad = _value_and_grad(get_loss(name, **SHARP[name]), x, LABELS)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_all_equal_labels(name):
    x = torch.randn(5, 4)
    loss = get_loss(name, **SHARP[name])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        value, grad = _value_and_grad(loss, x, torch.zeros(5, dtype=torch.long))
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ["supcon", "soft_nearest_neighbors", "triplet", "lifted_structure"])
@pytest.mark.parametrize(
    "labels", [torch.arange(4), torch.zeros(1, dtype=torch.long)], ids=["singletons", "B=1"]
)
def test_batch_without_valid_anchor_is_zero_with_a_warning(name, labels):
    loss = get_loss(name)
    with pytest.warns(RuntimeWarning, match="loss is 0"):
        value, grad = _value_and_grad(loss, torch.randn(labels.shape[0], 4), labels)
    assert value.item() == 0.0 and not grad.any()


@pytest.mark.parametrize("name", ["triplet", "lifted_structure"])
def test_all_equal_labels_have_no_negative_and_warn(name):
    with pytest.warns(RuntimeWarning, match="loss is 0"):
        value = get_loss(name)(torch.randn(4, 3), torch.ones(4, dtype=torch.long))
    assert value.item() == 0.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32(name, dtype):
    x = torch.randn(6, 8).to(dtype)
    loss = get_loss(name)
    value, grad = _value_and_grad(loss, x, LABELS)
    assert value.dtype == torch.float32 and grad.dtype == dtype
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    expected = call_loss(loss, x.float(), LABELS)
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_precision_keeps_its_dtype(name, dtype):
    value = call_loss(get_loss(name), torch.randn(6, 8, dtype=dtype), LABELS)
    assert value.dtype == dtype and value.ndim == 0
