"""Corpus files: the one reader behind ``contrasent search``/``serve`` and ``contrasent mine --corpus``, and
the one rule that turns a document's title and text into the text that is embedded, which
``contrasent evaluate``'s BEIR reader (:class:`contrasent.evaluation.Document`) uses too.

The rule is BEIR's: ``(title + " " + text).strip()``. A document without a title is its text, stripped;
a line of a plain text corpus is stripped the same way. So one corpus file gives the same texts, hence
the same embeddings and scores, whichever command reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from contrasent.data.files import DataFormatError, numbered_lines, read_jsonl
from contrasent.search.index_checks import check_ids
from contrasent.search.text_checks import check_text


def join_title(title: str | None, text: str) -> str:
    """The text a document is embedded as: ``(title + " " + text).strip()`` (BEIR's rule; ``None`` or
    ``""`` titles leave the stripped text)."""
    return f"{title or ''} {text}".strip()


def read_corpus(
    path: str | os.PathLike, text_field: str = "text", title_field: str | None = "title", id_field: str | None = None,
) -> tuple[list[Any], list[str]]:
    """Read ``(ids, texts)`` from a corpus file, texts joined by :func:`join_title`.

    ``.jsonl``: one JSON object per line (BEIR's ``corpus.jsonl`` as is): a string ``text_field`` and an
    optional string ``title_field`` (``None``: titles ignored); the id is ``id_field``, else ``_id`` or
    ``id`` when present, else the line number (from 0). Any other extension: one text per line, blank
    lines skipped, ids are line numbers (from 0).

    Raises:
        FileNotFoundError: no such file (or a folder).
        DataFormatError: a line that is not JSON, not an object, or without a string text (or with a
            title that is not a string), a text that is not valid Unicode; the message names the file and
            the line.
        TypeError / ValueError: an id that is not a str or an int, or one that repeats (both lines named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} {'is a folder' if path.is_dir() else 'not found'}")
    ids: list[Any] = []
    texts: list[str] = []
    if path.suffix != ".jsonl":
        for number, line in numbered_lines(path):
            if line.strip():
                ids.append(number - 1)
                texts.append(join_title(None, line))
        return ids, texts
    lines: list[int] = []
    for number, record in read_jsonl(path):
        texts.append(_document_text(record, f"{path}, line {number}", text_field, title_field))
        key = id_field or next((name for name in ("_id", "id") if name in record), None)
        if key is not None and key not in record:
            raise DataFormatError(f"{path}, line {number}: no {key!r} field (the id field)")
        ids.append(record[key] if key else number - 1)
        lines.append(number)
    check_ids(ids, (), str(path), lambda position: f"line {lines[position]}")
    return ids, texts


def _document_text(record: dict[str, Any], where: str, text_field: str, title_field: str | None) -> str:
    text = record.get(text_field)
    title = record.get(title_field) if title_field else None
    if not isinstance(text, str):
        raise DataFormatError(f"{where}: expected an object with a string {text_field!r} field")
    if title is not None and not isinstance(title, str):
        raise DataFormatError(f"{where}: the {title_field!r} field must be a string, got {type(title).__name__}")
    try:  # a JSON escape can hold a lone surrogate, which no tokenizer (and no UTF-8 file) takes
        for field, value in ((text_field, text), (title_field, title or "")):
            check_text(value, f"{where}, field {field!r}", blank_ok=True)
    except ValueError as error:
        raise DataFormatError(str(error)) from None
    return join_title(title, text)
