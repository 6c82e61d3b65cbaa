"""Read text files line by line, naming the file and line of whatever does not parse.

:func:`numbered_lines` and :func:`read_jsonl` are the line and JSON-lines readers that the training,
corpus and benchmark readers share (:mod:`contrasent.data.files`, :mod:`contrasent.search.corpus`,
:mod:`contrasent.evaluation`); :class:`DataFormatError` is what they all raise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

BYTE_ORDER_MARK = "\ufeff"


class DataFormatError(ValueError):
    """A data file (training data, a corpus, a benchmark) does not have the expected format; the message
    says where (file and line, or data set and row) and what was expected."""


def numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` (from 1, line end kept) with strict UTF-8 decoding; a bad byte is
    reported with its line and column. A UTF-8 byte-order mark (Excel writes one) is dropped: it would
    otherwise glue itself to the first column name or text."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    f"{path}, line {number}: byte {raw[error.start:error.start + 1]!r} at column {error.start + 1} "
                    "is not valid UTF-8; re-encode the file as UTF-8"
                ) from None
            yield number, line.removeprefix(BYTE_ORDER_MARK) if number == 1 else line


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file.

    Raises:
        DataFormatError: a line that is not valid JSON or not a JSON object (file and line named).
    """
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        yield number, json_object(record, f"{path}, line {number}")


def json_object(record: Any, where: str) -> dict[str, Any]:
    """``record`` if it is a JSON object; else a :class:`DataFormatError` naming ``where``."""
    if not isinstance(record, dict):  # a file's content, not an argument's type: a ValueError
        raise DataFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record
