"""Is this the model a saved index was built with? A few fixed sentences, embedded at build time and
again at load time, answer it.

The dimension alone does not: two models (or two trainings of one model under the same name) can share
it and still embed differently, which would make every score of the loaded index meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from contrasent.search.topk import l2_normalize

PROBE_TEXTS = (
    "A man is playing a guitar on stage.",
    "The central bank raised interest rates again.",
    "Mitochondria produce most of the cell's energy.",
)
# Probe embeddings of the same model agree to ~1e-6 across machines and thread counts; other models
# (or other weights) give cosines far below this.
SAME_MODEL_MIN_COSINE = 0.999


def model_probe(model: Any, truncate_dim: int | None = None) -> dict[str, list]:
    """``{"texts": PROBE_TEXTS, "embeddings": (3, dim) unnormalized}``: what a saved index records
    (``dim``: ``truncate_dim``, the index's, or the model's)."""
    embeddings = np.asarray(model.encode(list(PROBE_TEXTS), normalize=False, truncate_dim=truncate_dim))
    return {"texts": list(PROBE_TEXTS), "embeddings": embeddings.tolist()}


def check_same_model(model: Any, metadata: dict[str, Any], folder: Path, truncate_dim: int | None = None) -> None:
    """Raise ``ValueError`` when ``model`` (cut to ``truncate_dim``) is not the one the index in ``folder``
    (its ``index.json`` ``metadata``) was built with: another dimension, or probe cosines below 0.999."""
    built_with = metadata.get("model") or "an unnamed model"
    dim = truncate_dim or model.embedding_dim
    if metadata["embedding_dim"] != dim:
        raise ValueError(
            f"the index in {folder} was built with {built_with} ({metadata['embedding_dim']}-dimensional "
            f"embeddings), but the model given gives {dim}-dimensional embeddings; load it "
            "with the model it was built with, or rebuild the index"
        )
    cosine = probe_cosine(model, metadata["model_probe"], truncate_dim)
    if cosine < SAME_MODEL_MIN_COSINE:
        raise ValueError(
            f"the index in {folder} was built with a different model ({built_with}): the model given "
            f"embeds the index's probe sentences differently (cosine {cosine:.3f} < "
            f"{SAME_MODEL_MIN_COSINE}); load it with the model it was built with, or rebuild the index"
        )


def probe_cosine(model: Any, probe: dict[str, list], truncate_dim: int | None = None) -> float:
    """The lowest cosine between a recorded probe (:func:`model_probe`) and ``model``'s embeddings of its
    texts: at least :data:`SAME_MODEL_MIN_COSINE` for the model that recorded it."""
    recorded = np.asarray(probe["embeddings"], dtype=np.float32)
    current = np.asarray(model.encode(list(probe["texts"]), normalize=False, truncate_dim=truncate_dim))
    return float((l2_normalize(recorded) * l2_normalize(current)).sum(axis=1).min())
