"""Read and write training files: a ``datasets.Dataset`` from or to txt (one text per line), csv, tsv,
jsonl, json, parquet, or a ``datasets.save_to_disk`` folder.

:func:`load_training_file` is the one loader of training data (the recipes, ``contrasent mine``);
:func:`numbered_lines` and :func:`read_jsonl` are the line and JSON-lines readers that the corpus and
benchmark readers (:mod:`contrasent.search.corpus`, :mod:`contrasent.evaluation`) share. A file that does
not parse raises :class:`DataFormatError` naming the file, the line and what was expected: undecodable
bytes, rows with a different number of fields than the header, unbalanced quotes, JSON that is not an
object per line, labels or scores that are not numbers.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contrasent.data.columns import LABEL_COLUMNS, SCORE_COLUMNS

logger = logging.getLogger(__name__)

FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".json", ".parquet")


class DataFormatError(ValueError):
    """A data file (training data, a corpus, a benchmark) does not have the expected format; the message
    says where (file and line, or data set and row) and what was expected."""


def load_training_file(path: str | os.PathLike) -> Any:
    """Load a training file into a ``datasets.Dataset``; the format follows the file extension.

    * ``.txt``: one text per line, column ``text``; blank lines are skipped (with one warning).
    * ``.csv`` / ``.tsv``: a header row names the columns; fields stay strings.
    * ``.jsonl``: one JSON object per line, every object with the same keys.
    * ``.json``: a JSON array of such objects (what :func:`save_training_file` writes), or JSON lines.
    * ``.parquet``: read as is.
    * a folder: a ``datasets.save_to_disk`` folder, read as is.

    ``label`` columns of the text formats are converted to int and ``score`` columns to float.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unsupported extension.
        DataFormatError: the file does not parse (the message names the file and line).
    """
    import datasets

    path = Path(path)
    if path.is_dir():
        return datasets.load_from_disk(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"training file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return datasets.Dataset.from_parquet(str(path))
    readers = {".txt": _read_txt, ".csv": _read_delimited, ".tsv": _read_delimited, ".jsonl": _read_jsonl,
               ".json": _read_json}
    if suffix not in readers:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(FORMATS)} "
                         "or a save_to_disk folder")
    columns = readers[suffix](path)
    if not columns or not next(iter(columns.values())):
        raise DataFormatError(f"{path}: the file holds no rows")
    return datasets.Dataset.from_dict(_convert_numeric(columns, path))


def save_training_file(dataset: Any, path: str | os.PathLike) -> None:
    """Write ``dataset`` where :func:`load_training_file` reads it back, by the extension of ``path``.

    ``.jsonl`` (one object per line), ``.json`` (an array of objects), ``.csv``, ``.tsv``, ``.parquet``;
    any other path becomes a ``datasets.save_to_disk`` folder. Text is written as UTF-8, unescaped.
    """
    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        dataset.to_json(path, lines=suffix == ".jsonl", force_ascii=False)
    elif suffix in (".csv", ".tsv"):
        dataset.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        dataset.to_parquet(path)
    else:
        dataset.save_to_disk(path)


def numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` (from 1, line end kept) with strict UTF-8 decoding; a bad byte is
    reported with its line and column."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    f"{path}, line {number}: byte {raw[error.start:error.start + 1]!r} at column {error.start + 1} "
                    "is not valid UTF-8; re-encode the file as UTF-8"
                ) from None


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
        yield number, _object(record, f"{path}, line {number}")


def _object(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):  # a file's content, not an argument's type: a ValueError
        raise DataFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def _read_txt(path: Path) -> dict[str, list[Any]]:
    texts, blank = [], 0
    for _number, line in numbered_lines(path):
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
    numbers: list[int] = []

    def tracked():
        for number, line in numbered_lines(path):
            numbers.append(number)
            yield line

    reader = csv.reader(tracked(), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{path}: the file is empty; expected a header row naming the columns") from None
    except csv.Error as error:
        raise DataFormatError(f"{path}, line 1: malformed header ({error})") from None
    if len(set(header)) != len(header) or not all(name.strip() for name in header):
        raise DataFormatError(f"{path}, line 1: column names must be unique and non-empty, got {header}")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    while True:
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
            columns[name].append(value)
    return columns


def _read_jsonl(path: Path) -> dict[str, list[Any]]:
    return _columns((f"{path}, line {number}", record) for number, record in read_jsonl(path))


def _read_json(path: Path) -> dict[str, list[Any]]:
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
    return _columns((f"{path}, object {index}", record) for index, record in enumerate(records, start=1))


def _columns(records: Iterator[tuple[str, Any]]) -> dict[str, list[Any]]:
    """Column lists from ``(where, object)`` pairs, every object with the keys of the first."""
    columns: dict[str, list[Any]] | None = None
    for where, record in records:
        _object(record, where)
        if columns is None:
            columns = {key: [] for key in record}
        if set(record) != set(columns):
            raise DataFormatError(f"{where}: keys {sorted(record)} differ from the first row's {sorted(columns)}")
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
                raise DataFormatError(
                    f"{path}, row {row}, column {name!r}: {value!r} is not {expected}") from None
        columns[name] = converted
    return columns
