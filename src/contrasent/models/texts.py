"""What ``SentenceEncoder.encode`` accepts as texts, and the error for what it does not.

Accepted: one string (a text), or any ordered iterable of strings: a list, a tuple, a generator (read
once), a numpy array or pandas Series of strings, a dict's ``keys()`` (ordered). Refused with a ``TypeError`` that says what was given
and what to pass instead: ``None``, bytes (undecoded text: which encoding is the caller's to say), a set
(no order: the rows of the result could not be matched to the texts), a dict (its keys would be
encoded, rarely what was meant), anything not iterable, and any item that is not a string (named by its
position).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_BYTES = (bytes, bytearray, memoryview)


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
    return items
