"""Stable 64-bit text ids: equal texts get equal ids in every process, on every machine, every run.

Python's ``hash(str)`` is salted per process (``PYTHONHASHSEED``), so ranks would disagree; the id is
instead the first 8 bytes of the BLAKE2b digest of the UTF-8 text, read as a signed little-endian int64.
Two different texts collide with probability about n²/2⁶⁵ (n = 10⁶ texts: ~3·10⁻⁸).
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor


def text_id(text: str) -> int:
    """The stable signed 64-bit id of ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return int.from_bytes(blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def text_id_array(texts: Iterable[str]) -> np.ndarray:
    """Ids of ``texts`` as an int64 numpy array (N,)."""
    return np.fromiter((text_id(text) for text in texts), dtype=np.int64)


def text_ids(texts: Iterable[str]) -> Tensor:
    """Ids of ``texts`` as an int64 tensor (N,), e.g. a batch column, to gather and build masks from."""
    import torch

    return torch.from_numpy(text_id_array(texts))
