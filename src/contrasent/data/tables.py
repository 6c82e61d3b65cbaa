"""Training files as columns: txt, csv / tsv, jsonl and json read into :class:`Table` (``{column: values}``
and the line each row starts on), so that every later error can name the file and line of a row.

What does not parse raises :class:`~contrasent.data.lines.DataFormatError` naming the file, the line and
what was expected: rows with a different number of fields than the header, unbalanced quotes, JSON that
is not an object per line, a nested object or array where a text or number belongs, a column whose
values change type, labels or scores that are not numbers.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrasent.data.columns import LABEL_COLUMNS, SCORE_COLUMNS
from contrasent.data.lines import DataFormatError, json_object, numbered_lines, read_jsonl

logger = logging.getLogger(__name__)

_JSON_SPACE = re.compile(r"[ \t\n\r]*")


@dataclass
class Table:
    """A training file's columns (one list of values each, in file order) and, per row, the file line
    (from 1) where the row starts."""

    columns: dict[str, list[Any]]
    lines: list[int]


def read_table(path: Path) -> Table:
    """The :class:`Table` of a ``.txt``, ``.csv``, ``.tsv``, ``.jsonl`` or ``.json`` training file, labels
    converted to int and scores to float. The caller has checked the extension (:data:`READERS`)."""
    table = READERS[path.suffix.lower()](path)
    _convert_numeric(table, path)
    return table


def _read_txt(path: Path) -> Table:
    texts, lines, blank = [], [], 0
    for number, line in numbered_lines(path):
        line = line.rstrip("\r\n")
        if line.strip():
            texts.append(line)
            lines.append(number)
        else:
            blank += 1
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    return Table({"text": texts}, lines)


def _read_delimited(path: Path) -> Table:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    numbers: list[int] = []

    def tracked() -> Iterator[str]:
        for number, line in numbered_lines(path):
            numbers.append(number)
            yield line

    reader = csv.reader(tracked(), delimiter=delimiter, strict=True)
    try:
        header = [name.strip() for name in next(reader)]  # "text, label": the space is not part of the name
    except StopIteration:
        raise DataFormatError(f"{path}: the file is empty; expected a header row naming the columns") from None
    except csv.Error as error:
        raise DataFormatError(f"{path}, line 1: malformed header ({error})") from None
    if len(set(header)) != len(header) or not all(header):
        raise DataFormatError(f"{path}, line 1: column names must be unique and non-empty, got {header}")
    table = Table({name: [] for name in header}, [])
    while True:
        start = len(numbers) + 1  # the row's first line: the reader has consumed the lines before it
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataFormatError(
                f"{path}, line {numbers[-1]}: malformed row ({error}); check for stray quotes") from None
        if not row:
            continue
        if len(row) != len(header):
            spans_lines = any("\n" in field for field in row)
            raise DataFormatError(
                f"{path}, line {numbers[-1]}: {len(row)} field(s), expected {len(header)} as in the header {header}"
                + (" (a quoted field spans several lines: check for a stray quote)" if spans_lines else "")
            )
        for name, value in zip(header, row):
            table.columns[name].append(value)
        table.lines.append(numbers[start - 1])
    return table


def _read_jsonl(path: Path) -> Table:
    return _table(path, read_jsonl(path))


def _read_json(path: Path) -> Table:
    """A JSON array of objects; JSON lines too (one object per line), as ``datasets`` reads ``.json``."""
    text = "".join(line for _, line in numbered_lines(path))
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":  # a second value after the first: JSON lines
            return _read_jsonl(path)
        raise DataFormatError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
    if isinstance(records, dict):  # one object: JSON lines of one row
        return _read_jsonl(path)
    if not isinstance(records, list):
        raise DataFormatError(f"{path}: expected a JSON array of objects, got {type(records).__name__}")
    return _table(path, zip(_array_lines(text), records))


def _array_lines(text: str) -> Iterator[int]:
    """The line on which each element of the JSON array ``text`` (valid JSON) starts."""
    decoder, line, counted = json.JSONDecoder(), 1, 0
    position = _JSON_SPACE.match(text, text.index("[") + 1).end()
    while text[position] != "]":
        line, counted = line + text.count("\n", counted, position), position
        yield line
        position = _JSON_SPACE.match(text, decoder.raw_decode(text, position)[1]).end()
        if text[position] == ",":
            position = _JSON_SPACE.match(text, position + 1).end()


def _table(path: Path, records: Iterator[tuple[int, Any]]) -> Table:
    """A :class:`Table` from ``(line, object)`` pairs: every object with the keys of the first, every value
    a string, number, boolean or null, and one type per column (labels and scores are converted later)."""
    table: Table | None = None
    kinds: dict[str, tuple[str, int]] = {}  # column -> (JSON type, first line holding it)
    for line, record in records:
        where = f"{path}, line {line}"
        json_object(record, where)
        if table is None:
            table = Table({key: [] for key in record}, [])
        if set(record) != set(table.columns):
            raise DataFormatError(f"{where}: keys {sorted(record)} differ from the first row's {sorted(table.columns)}")
        for key, value in record.items():
            _check_json_value(key, value, where, kinds, line)
            table.columns[key].append(value)
        table.lines.append(line)
    return table or Table({}, [])


def _check_json_value(key: str, value: Any, where: str, kinds: dict[str, tuple[str, int]], line: int) -> None:
    kind = _json_kind(value)
    if kind in ("object", "array"):
        raise DataFormatError(f"{where}: the value of {key!r} is a JSON {kind}; expected a string (a text) or a "
                              "number (a label or score)")
    if kind == "null" or key in LABEL_COLUMNS or key in SCORE_COLUMNS:
        return
    first = kinds.setdefault(key, (kind, line))
    if first[0] != kind:
        raise DataFormatError(f"{where}: the value of {key!r} is a {kind} ({value!r}) where line {first[1]} holds a "
                              f"{first[0]}; a column holds one type")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(value)]


def _convert_numeric(table: Table, path: Path) -> None:
    """Labels to int, scores to float, naming the file line of a value that is not one."""
    for name, values in table.columns.items():
        kind = int if name in LABEL_COLUMNS else float if name in SCORE_COLUMNS else None
        if kind is None:
            continue
        converted = [_number(value, kind) for value in values]
        for line, value, number in zip(table.lines, values, converted):
            if number is None:
                expected = "an integer class label" if kind is int else "a number"
                raise DataFormatError(f"{path}, line {line}, column {name!r}: {value!r} is not {expected}")
        table.columns[name] = converted


def _number(value: Any, kind: type) -> int | float | None:
    """``value`` (a number or its text) as ``kind``; ``None`` if it is not one (``true`` is not the label 1)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if kind is int:
        return int(number) if number.is_integer() else None
    return number


READERS: dict[str, Callable[[Path], Table]] = {
    ".txt": _read_txt, ".csv": _read_delimited, ".tsv": _read_delimited, ".jsonl": _read_jsonl, ".json": _read_json,
}
