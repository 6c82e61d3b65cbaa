"""Embeddings stored as ``.npy`` files keyed by the model and the texts, so that mining the same corpus
again (other rules, other rows) does not encode it again.

The key is a BLAKE2b hash of the model identity (:func:`model_identity`: class, name or path and
configuration, not the weights) and of the texts in order. Files are written aside and renamed, so that
an interrupted run or two concurrent ones never leave a truncated file under a valid key. A stored file
that cannot be read, or that does not hold one finite row per text (damaged, or edited), is never used:
it is encoded again and replaced, with a warning naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.models.encoding import encode_array


def model_identity(model: Any) -> str:
    """Class, name or path and configuration of ``model``: the model part of the cache key."""
    backbone_config = getattr(getattr(model, "backbone", None), "config", None)
    name = getattr(model, "name_or_path", None) or getattr(backbone_config, "_name_or_path", None)
    config = getattr(model, "config", None)
    config = config.to_dict() if hasattr(config, "to_dict") else None
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    return json.dumps({"class": kind, "name": str(name), "config": config}, sort_keys=True, default=str)


def encode_cached(
    model: Any, texts: list[str], batch_size: int, cache_dir: str | os.PathLike | None, identity: str
) -> np.ndarray:
    """(len(texts), d) float32 embeddings of ``texts``: read from ``cache_dir`` when stored there under
    ``identity`` and these texts, else encoded (``batch_size`` passed if ``model.encode`` takes it) and
    stored. ``cache_dir=None``: always encoded, nothing stored."""
    path = None
    if cache_dir is not None:
        digest = hashlib.blake2b(identity.encode(), digest_size=16)
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        path = Path(cache_dir) / f"embeddings-{digest.hexdigest()}.npy"
        cached = _read(path, len(texts)) if path.is_file() else None
        if cached is not None:
            return cached
    embeddings = encode_array(model, texts, batch_size=batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, embeddings)
        os.replace(partial, path)
    return embeddings


def _read(path: Path, rows: int) -> np.ndarray | None:
    """The stored embeddings, or ``None`` (with a warning) when the file is damaged or not ``rows`` finite
    float rows: an unusable cache entry costs an encoding, never a wrong result."""
    try:
        embeddings = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        problem = f"cannot be read ({error})"
    else:
        if isinstance(embeddings, np.ndarray) and embeddings.ndim == 2 and len(embeddings) == rows \
                and embeddings.dtype.kind == "f" and np.isfinite(embeddings).all():
            return embeddings
        problem = f"holds {getattr(embeddings, 'shape', '?')} values, not {rows} finite rows"
    warnings.warn(f"embedding cache {path} {problem}: encoding again and replacing it", UserWarning, stacklevel=3)
    return None
