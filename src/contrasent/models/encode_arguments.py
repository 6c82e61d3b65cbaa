"""What ``SentenceEncoder.encode`` accepts, and the error, naming the argument, for what it does not.

Texts (:func:`as_text_list`): one string (a text), or any ordered iterable of strings: a list, a tuple,
a generator (read once), a numpy array or pandas Series of strings, a dict's ``keys()``. Refused with a
``TypeError`` that says what was given and what to pass instead: ``None``, bytes (undecoded text: which
encoding is the caller's to say), a set (no order: the rows of the result could not be matched to the
texts), a dict (its keys would be encoded, rarely what was meant), anything not iterable, any item that
is not a string (named by its position); with a ``ValueError``, a string holding a lone surrogate, which
no tokenizer reads.

Options (:func:`check_options`, :func:`autocast_dtype`): ``batch_size`` and ``max_length`` positive
integers (not floats or bools), ``normalize`` ``True``, ``False`` or ``None`` (a string such as ``"no"``
would be truthy), ``convert_to`` ``"numpy"`` or ``"torch"``, ``dtype`` one of the names or torch dtypes
listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch

_BYTES = (bytes, bytearray, memoryview)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # what Python keeps of undecodable bytes (surrogateescape)


def as_text_list(texts: Any) -> list[str]:
    """``texts`` as a new list of strings (one string is a list of one).

    Raises:
        TypeError: ``texts`` is not a string or an ordered iterable of strings (see the module docstring).
    """
    if isinstance(texts, str):
        return [texts]
    expected = "expected a string or an iterable of strings (list, tuple, generator ...)"
    if texts is None:
        raise TypeError(f"texts is None; {expected}")
    if isinstance(texts, _BYTES):
        raise TypeError(f"texts is {type(texts).__name__}, not text: decode it first, e.g. texts.decode('utf-8')")
    if isinstance(texts, (set, frozenset)):
        raise TypeError(f"texts is a {type(texts).__name__}, which has no order, so the rows of the result could "
                        "not be matched to the texts; pass a list (e.g. sorted(texts))")
    if isinstance(texts, Mapping):
        raise TypeError(f"texts is a {type(texts).__name__}; pass its texts as a list, e.g. list(texts.values())")
    if not isinstance(texts, Iterable):
        raise TypeError(f"texts is {type(texts).__name__}; {expected}")
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str):
            hint = ": decode it first, e.g. .decode('utf-8')" if isinstance(text, _BYTES) else ""
            raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str{hint}")
        surrogate = None if text.isascii() else _LONE_SURROGATE.search(text)
        if surrogate is not None:  # tokenizers fail on it with a message that names nothing
            raise ValueError(f"texts[{index}] holds a lone surrogate {surrogate.group()!r} at character "
                             f"{surrogate.start()}, which is not text: decode its bytes with errors='replace'")
    return items


def check_options(batch_size: Any, max_length: Any, normalize: Any, convert_to: Any) -> None:
    """Raise a ``TypeError`` or ``ValueError`` naming the first of ``encode``'s options that is out of place."""
    if convert_to not in ("numpy", "torch"):
        raise ValueError(f"convert_to must be 'numpy' or 'torch', got {convert_to!r}")
    check_positive_int("batch_size", batch_size)
    if max_length is not None:
        check_positive_int("max_length", max_length)
    if normalize is not None and not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True, False or None (the model's setting), got {normalize!r}")


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")


def autocast_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """The autocast dtype that ``encode(dtype=...)`` names; ``None`` for full precision."""
    names = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
             "fp16": torch.float16, "float32": None, "fp32": None}
    if dtype is None or dtype == torch.float32:
        return None
    if isinstance(dtype, str):
        if dtype not in names:
            raise ValueError(f"dtype must be one of {sorted(names)} or a torch dtype, got {dtype!r}")
        return names[dtype]
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype}")
    return dtype
