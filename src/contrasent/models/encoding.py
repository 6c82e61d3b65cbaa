"""Call the ``encode`` of any model: a :class:`~contrasent.models.encoder.SentenceEncoder`, a
``sentence_transformers.SentenceTransformer``, or an object whose ``encode`` takes only a list of texts.

Evaluation and mining both take such models; this is where "pass ``batch_size`` (or
``show_progress_bar``) only if ``encode`` accepts it" and "turn what it returns into a float32
``(len(texts), dim)`` array" are written, once. No torch import: a tensor is recognized by its
``detach`` method.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Encoder(Protocol):
    """Anything with ``encode(list[str]) -> array of shape (n, dim)``."""

    def encode(self, texts: list[str], *args: Any, **kwargs: Any) -> Any: ...


def accepted_options(model: Encoder, **options: Any) -> dict[str, Any]:
    """The keyword ``options`` that ``model.encode`` accepts: those it names, all of them when it takes
    ``**kwargs``, none when its signature cannot be read (a builtin or C extension)."""
    try:
        parameters = inspect.signature(model.encode).parameters
    except (TypeError, ValueError):
        return {}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {key: value for key, value in options.items() if accepts_any or key in parameters}


def encode_array(model: Encoder, texts: Sequence[str], **options: Any) -> np.ndarray:
    """``model.encode(texts, **options)`` as a float32 array of shape ``(len(texts), dim)``.

    Args:
        model: anything with ``encode(list[str])``.
        texts: the texts, passed as a list.
        **options: e.g. ``batch_size=32``, ``show_progress_bar=False``; each is passed only if
            ``model.encode`` accepts it (:func:`accepted_options`).

    Returns:
        (len(texts), dim) float32 array; a torch tensor is detached and copied to the CPU.

    Raises:
        ValueError: ``model.encode`` returned something that is not ``(len(texts), dim)``.
    """
    output = model.encode(list(texts), **accepted_options(model, **options))
    if hasattr(output, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        output = output.detach().float().cpu().numpy()
    embeddings = np.asarray(output, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
        raise ValueError(
            f"{type(model).__name__}.encode returned shape {embeddings.shape} for {len(texts)} texts; "
            "expected (number of texts, embedding dim)"
        )
    return embeddings
