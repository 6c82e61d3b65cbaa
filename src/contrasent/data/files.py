"""Read training files into a ``datasets.Dataset``: txt (one text per line), csv, tsv, jsonl, parquet.

Errors name the file, the line and what was expected: undecodable bytes, rows with a different number
of fields than the header, unbalanced quotes, labels or scores that are not numbers.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

from contrasent.data.columns import LABEL_COLUMNS, SCORE_COLUMNS

logger = logging.getLogger(__name__)

FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")


def load_training_file(path: str | os.PathLike) -> Any:
    """Load a training file into a ``datasets.Dataset``; the format follows the file extension.

    * ``.txt``: one text per line, column ``text``; blank lines are skipped (with one warning).
    * ``.csv`` / ``.tsv``: a header row names the columns.
    * ``.jsonl``: one JSON object per line, every object with the same keys.
    * ``.parquet``: read as is.

    ``label`` columns are converted to int and ``score`` columns to float.
    """
    import datasets

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(path))
    readers = {".txt": _read_txt, ".csv": _read_delimited, ".tsv": _read_delimited, ".jsonl": _read_jsonl}
    if suffix not in readers:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(FORMATS)}")
    columns = readers[suffix](path)
    if not columns or not next(iter(columns.values())):
        raise ValueError(f"{path}: the file holds no rows")
    return datasets.Dataset.from_dict(_convert_numeric(columns, path))


def _lines(path: Path):
    """Yield (line number, text) with strict UTF-8 decoding; a bad byte is reported with its line."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: byte {raw[error.start:error.start + 1]!r} at column {error.start + 1} "
                    "is not valid UTF-8; re-encode the file as UTF-8"
                ) from None


def _read_txt(path: Path) -> dict[str, list[Any]]:
    texts, blank = [], 0
    for _number, line in _lines(path):
        line = line.rstrip("\r\n")
        if line.strip():
            texts.append(line)
        else:
            blank += 1
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    return {"text": texts}


def _read_delimited(path: Path) -> dict[str, list[Any]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    lines = ((number, line) for number, line in _lines(path))
    numbers: list[int] = []

    def tracked():
        for number, line in lines:
            numbers.append(number)
            yield line

    reader = csv.reader(tracked(), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path}: the file is empty; expected a header row naming the columns") from None
    except csv.Error as error:
        raise ValueError(f"{path}, line 1: malformed header ({error})") from None
    if len(set(header)) != len(header) or not all(name.strip() for name in header):
        raise ValueError(f"{path}, line 1: column names must be unique and non-empty, got {header}")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise ValueError(f"{path}, line {numbers[-1]}: malformed row ({error}); check for stray quotes") from None
        if not row:
            continue
        if len(row) != len(header):
            spans_lines = any("\n" in field for field in row)
            raise ValueError(
                f"{path}, line {numbers[-1]}: {len(row)} field(s), expected {len(header)} as in the header {header}"
                + (" (a quoted field spans several lines: check for a stray quote)" if spans_lines else "")
            )
        for name, value in zip(header, row):
            columns[name].append(value)
    return columns


def _read_jsonl(path: Path) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] | None = None
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):  # a file's content, not an argument's type: ValueError
            message = f"{path}, line {number}: expected a JSON object, got {type(record).__name__}"
            raise ValueError(message)  # noqa: TRY004
        if columns is None:
            columns = {key: [] for key in record}
        if set(record) != set(columns):
            raise ValueError(f"{path}, line {number}: keys {sorted(record)} differ from the first row's {sorted(columns)}")
        for key, value in record.items():
            columns[key].append(value)
    return columns or {}


def _convert_numeric(columns: dict[str, list[Any]], path: Path) -> dict[str, list[Any]]:
    """Labels to int, scores to float, naming the row (1-based, header excluded) of a bad value."""
    for name, values in columns.items():
        kind = int if name in LABEL_COLUMNS else float if name in SCORE_COLUMNS else None
        if kind is None:
            continue
        converted = []
        for row, value in enumerate(values, start=1):
            try:
                number = float(value)
                if kind is int and not number.is_integer():
                    raise ValueError
                converted.append(kind(number))
            except (TypeError, ValueError):
                expected = "an integer class label" if kind is int else "a number"
                raise ValueError(f"{path}, row {row}, column {name!r}: {value!r} is not {expected}") from None
        columns[name] = converted
    return columns
