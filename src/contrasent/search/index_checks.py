"""What an index's rows must be, whether they are added (:meth:`SemanticIndex.add`) or loaded from a
saved folder (:mod:`contrasent.search.index_files`): unique ids of a JSON type, finite embeddings, and
unit rows for a cosine index.

A NaN row is not a harmless oddity: the search ranks it first (or never) for every query, and its score
becomes ``null`` over HTTP. A duplicate id makes results ambiguous and the id→row map wrong. So these
are refused where they enter, naming the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.search.text_checks import short_repr

# rows checked per step: bounds the temporary boolean/float arrays for large corpora (64k x dim)
_ROWS_PER_CHECK = 1 << 16
# a stored cosine row is L2-normalized in float32: its norm is 1 within ~1e-6; 1e-3 leaves room and
# still catches rows that were never normalized
_UNIT_NORM_TOLERANCE = 1e-3


def as_list(values: Iterable[Any], name: str) -> list[Any]:
    """``values`` (texts or ids) as a list, numpy integers as ``int`` (what JSON keeps); a lone string (or
    bytes) is refused, not split into characters."""
    if isinstance(values, (str, bytes, bytearray)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list (or another iterable) of values, one per document, got "
                        f"{type(values).__name__} ({short_repr(values)})")
    return [int(value) if isinstance(value, np.integer) else value for value in values]


def check_ids(ids: Sequence[Any], known: Container[Any], source: str, where: Callable[[int], str]) -> None:
    """Raise unless every id is a ``str`` or an ``int`` (not ``bool``) and none repeats, in ``ids`` or
    with ``known`` (the ids already in the index).

    Args:
        ids: the new ids.
        known: ids already taken.
        source: where the ids come from, first in a message (``"SemanticIndex.add"``, a file).
        where: names the id at a position (``"ids[3]"``, ``"line 4"``).

    Raises:
        TypeError: an id of another type (float, None, list ...); JSON would not keep it as it is.
        ValueError: a duplicate, with both places named, and how many duplicates there are.
    """
    for position, doc_id in enumerate(ids):
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise TypeError(f"{source}, {where(position)}: an id must be a str or an int, got {doc_id!r} "
                            f"({type(doc_id).__name__})")
    first: dict[Any, int] = {}
    duplicates: list[str] = []
    for position, doc_id in enumerate(ids):
        if doc_id in known:
            duplicates.append(f"duplicate id {doc_id!r} at {where(position)}: already in the index")
        elif doc_id in first:
            duplicates.append(f"duplicate id {doc_id!r} at {where(position)} and {where(first[doc_id])}")
        else:
            first[doc_id] = position
    if duplicates:
        more = f" ({len(duplicates)} duplicates in all)" if len(duplicates) > 1 else ""
        raise ValueError(f"{source}: {duplicates[0]}{more}; ids must be unique")


def first_non_finite_row(embeddings: np.ndarray) -> int | None:
    """The first row holding a NaN or an infinity, or ``None``."""
    for start in range(0, len(embeddings), _ROWS_PER_CHECK):
        bad = np.flatnonzero(~np.isfinite(embeddings[start:start + _ROWS_PER_CHECK]).all(axis=1))
        if len(bad):
            return start + int(bad[0])
    return None


def first_non_unit_row(embeddings: np.ndarray) -> tuple[int, float] | None:
    """The first row whose L2 norm is neither 1 nor 0 (a cosine index stores normalized rows; an all-zero
    row is the normalization of a zero embedding), with its norm; or ``None``."""
    for start in range(0, len(embeddings), _ROWS_PER_CHECK):
        norms = np.linalg.norm(embeddings[start:start + _ROWS_PER_CHECK], axis=1)
        bad = np.flatnonzero((np.abs(norms - 1) > _UNIT_NORM_TOLERANCE) & (norms != 0))
        if len(bad):
            return start + int(bad[0]), float(norms[bad[0]])
    return None


FieldRules = dict[str, tuple[str, Callable[[Any], bool]]]


def read_format_file(path: Path, file_format: str, versions: Container[Any], expected: str, missing: str) -> dict:
    """The JSON object in ``path`` (``index.json``, ``manifest.json``), whose ``format`` must be ``file_format``
    and ``version`` one of ``versions`` (``expected`` says which, in the error).

    Raises:
        FileNotFoundError: no such file (the message ends with ``missing``).
        ValueError: not JSON, or another format or version, naming the file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {missing}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != file_format or \
            document.get("version") not in versions:
        found = (document.get("format"), document.get("version")) if isinstance(document, dict) else (document, None)
        raise ValueError(f"{path}: expected format {file_format!r} version {expected}, got {found[0]!r} "
                         f"version {found[1]!r}")
    return document


def check_fields(path: Path, document: dict[str, Any], rules: FieldRules) -> None:
    """Raise a ``ValueError`` naming ``path`` and the field when a field of ``rules`` (name -> (what it must
    be, test)) is missing from ``document`` or fails its test."""
    for key, (expected, valid) in rules.items():
        if key not in document:
            raise ValueError(f"{path}: no {key!r} field; expected {expected}")
        if not valid(document[key]):
            raise ValueError(f"{path}: {key!r} must be {expected}, got {short_repr(document[key])}")
