"""Argument checks shared by the losses: every error is a ``ValueError`` naming the argument and shapes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_positive(name: str, value: float) -> float:
    """``value`` if it is > 0 (temperatures, scales), else a ``ValueError``."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """``value`` if it is ≥ 0 (margins, weights), else a ``ValueError``."""
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_embeddings(name: str, x: Tensor, ndim: int = 2) -> Tensor:
    """``x`` if it is a non-empty floating tensor of rank ``ndim`` (2: (B, d)), else a ``ValueError``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        layout = {1: "(C,)", 2: "(B, d)", 3: "(B, k, d)"}[ndim]
        raise ValueError(f"{name} must be a {ndim}-D tensor {layout}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row, got shape {tuple(x.shape)}")
    return x


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Check both are (B, d) embeddings of the same shape (rows are paired one to one)."""
    check_embeddings(name_a, a)
    check_embeddings(name_b, b)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape (B, d), got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_negatives(negatives: Tensor | None, anchors: Tensor) -> Tensor | None:
    """Hard negatives as (B, k, d): (B, d) means one per anchor, (B, 0, d) none; ``None`` stays ``None``."""
    if negatives is None:
        return None
    if isinstance(negatives, Tensor) and negatives.ndim == 2:
        negatives = negatives[:, None, :]
    check_embeddings("negatives", negatives, ndim=3)
    batch, dim = anchors.shape
    if negatives.shape[0] != batch or negatives.shape[2] != dim:
        raise ValueError(
            f"negatives must have shape (B, d) or (B, k, d) with B={batch}, d={dim} as anchors, "
            f"got {tuple(negatives.shape)}"
        )
    return negatives


def _check_vector(name: str, values: Tensor, batch_size: int, what: str, dtype_ok: bool) -> Tensor:
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.ndim != 1 or values.shape[0] != batch_size or not dtype_ok:
        raise ValueError(
            f"{name} must be a 1-D {what} tensor of length B={batch_size} (one per row), "
            f"got shape {tuple(values.shape)} and dtype {values.dtype}"
        )
    return values


def check_labels(name: str, labels: Tensor, batch_size: int, *, binary: bool = False) -> Tensor:
    """``labels`` if it is a 1-D integer (or bool) tensor of length ``batch_size``; only 0/1 if ``binary``."""
    integer = isinstance(labels, Tensor) and not (labels.is_floating_point() or labels.is_complex())
    _check_vector(name, labels, batch_size, "integer", integer)
    if binary and labels.dtype != torch.bool and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(
            f"{name} must hold only 0 (dissimilar) and 1 (similar), got {labels.unique().tolist()}"
        )
    return labels


def check_scores(name: str, scores: Tensor, batch_size: int) -> Tensor:
    """``scores`` if it is a 1-D real (float or integer, not bool) tensor of length ``batch_size``."""
    real = isinstance(scores, Tensor) and scores.dtype != torch.bool and not scores.is_complex()
    return _check_vector(name, scores, batch_size, "real-valued", real)
