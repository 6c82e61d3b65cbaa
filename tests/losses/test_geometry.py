"""alignment and uniformity (Wang & Isola 2020) against explicit loops over pairs."""

from __future__ import annotations

import math

import pytest
import torch

from contrasent.losses.geometry import alignment, uniformity


def _unit(x):
    return x / x.pow(2).sum(-1, keepdim=True).sqrt()


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("alpha", [2.0, 1.0])
def test_alignment_matches_loop(batch, alpha):
    x, y = torch.randn(batch, 6, dtype=torch.float64), torch.randn(batch, 6, dtype=torch.float64)
    expected = sum((_unit(x[i]) - _unit(y[i])).pow(2).sum().sqrt() ** alpha for i in range(batch)) / batch
    torch.testing.assert_close(alignment(x, y, alpha=alpha), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch", [2, 6])
@pytest.mark.parametrize("t", [2.0, 0.5])
def test_uniformity_matches_loop(batch, t):
    x = torch.randn(batch, 4, dtype=torch.float64)
    terms = [
        math.exp(-t * (_unit(x[i]) - _unit(x[j])).pow(2).sum().item())
        for i in range(batch)
        for j in range(i + 1, batch)
    ]
    expected = math.log(sum(terms) / len(terms))
    assert uniformity(x, t=t).item() == pytest.approx(expected, rel=1e-10)


def test_extremes_and_precision():
    x = torch.randn(1, 8).repeat(4, 1)
    assert alignment(x, x).item() == pytest.approx(0.0, abs=1e-12)
    assert uniformity(x).item() == pytest.approx(0.0, abs=1e-6)  # collapsed: the worst value
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert uniformity(opposite, t=2.0).item() == pytest.approx(-8.0)  # ‖x−y‖² = 4: the best value
    assert uniformity(x.bfloat16()).dtype == torch.float32
    assert alignment(x.bfloat16(), x.bfloat16()).dtype == torch.float32


def test_bad_input():
    with pytest.raises(ValueError, match=r"at least 2 rows.*\(1, 8\)"):
        uniformity(torch.randn(1, 8))
    with pytest.raises(ValueError, match=r"anchors and positives .*\(3, 8\) and \(2, 8\)"):
        alignment(torch.randn(3, 8), torch.randn(2, 8))
    with pytest.raises(ValueError, match="t must be > 0"):
        uniformity(torch.randn(3, 8), t=0)
