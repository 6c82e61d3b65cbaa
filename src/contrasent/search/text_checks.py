"""What a search accepts: texts that a model can embed, queries that say something, a positive ``top_k``.

One set of rules for the Python API (:class:`~contrasent.SemanticIndex`), ``contrasent search`` and the
HTTP service, so that each refuses the same inputs with the same reason; only the name of the culprit
differs (``queries[1]``, ``query 2``, ``"queries"[1]``), which the caller passes.

- A text must be a ``str`` of valid Unicode: a lone surrogate (``"abc\\ud800"``, from a JSON escape or
  from command-line bytes that are not UTF-8) cannot be tokenized, nor written to a UTF-8 file.
- A query must say something: a query of whitespace and invisible characters only (``" "``,
  ``"\\u200b"``, ``"\\x00"``) is embedded as the empty text, and would return the same arbitrary ranking
  for every such query. Documents may be blank (a corpus can hold empty documents; they rank last).
"""

from __future__ import annotations

import operator
import unicodedata
from collections.abc import Iterable
from typing import Any

# Unicode categories of characters a tokenizer drops: control and format characters (zero-width space,
# byte-order mark, NUL ...). A query made of these and whitespace is empty to the model.
_INVISIBLE_CATEGORIES = ("Cc", "Cf")


def check_text(text: Any, name: str, *, blank_ok: bool = False) -> str:
    """``text`` if it is a string of valid Unicode (and, unless ``blank_ok``, not blank).

    Args:
        text: the value to check.
        name: how the message names it (``"queries[2]"``, ``'"query"'`` ...).
        blank_ok: accept a text of whitespace and invisible characters only (documents).

    Raises:
        TypeError: not a ``str``.
        ValueError: a lone surrogate (its position and code point named, and the byte when it stands for
            one that was not UTF-8), or a blank text.
    """
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string, got {type(text).__name__} ({short_repr(text)})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        # Python turns bytes that are not UTF-8 (in command-line arguments) into U+DC80..U+DCFF
        origin = f" (the byte 0x{code - 0xDC00:02x}, not UTF-8)" if 0xDC80 <= code <= 0xDCFF else ""
        raise ValueError(f"{name} holds a lone surrogate U+{code:04X} at character {error.start}{origin}: not "
                         "valid Unicode text") from None
    if not blank_ok and is_blank(text):
        raise ValueError(f"{name} is empty or only whitespace ({short_repr(text)}): there is nothing to search for")
    return text


def is_blank(text: str) -> bool:
    """True when ``text`` holds nothing but whitespace and invisible (control, format) characters."""
    return all(char.isspace() or unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in text)


def check_queries(queries: Any) -> tuple[list[str], bool]:
    """``(queries as a list, whether one string was given)``; each query checked by :func:`check_text`.

    Raises:
        TypeError: not a string nor an iterable of strings (``None``, ``bytes``, a number ...), or an item
            that is not a string.
        ValueError: no query at all (``[]``), or a blank or invalid query, named by its index.
    """
    if isinstance(queries, str):
        return [check_text(queries, "the query")], True
    if isinstance(queries, (bytes, bytearray)) or not isinstance(queries, Iterable):
        raise TypeError(f"queries must be a string or a list of strings, got {type(queries).__name__} "
                        f"({short_repr(queries)})")
    batch = list(queries)
    if not batch:
        raise ValueError("queries is empty: give at least one query (a string, or a list of strings)")
    return [check_text(query, f"queries[{position}]") for position, query in enumerate(batch)], False


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` when it is a positive integer (numpy integers included, ``bool`` and
    integral floats not): ``top_k``, ``batch_size``."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {short_repr(value)}")
    return number


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, shortened: a message shows the culprit without printing a whole document."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."
