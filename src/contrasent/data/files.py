"""Read and write training files: a ``datasets.Dataset`` from or to txt (one text per line), csv, tsv,
jsonl, json, parquet, or a ``datasets.save_to_disk`` folder.

:func:`load_training_file` is the one loader of training data (the recipes, ``contrasent mine``). A file
that does not parse raises :class:`DataFormatError` naming the file, the line and what was expected
(:mod:`contrasent.data.tables`); the data set it returns remembers the file line of each row
(:mod:`contrasent.data.row_sources`), so that the checks before training name rows as the file does.
:func:`numbered_lines` and :func:`read_jsonl` (:mod:`contrasent.data.lines`) are the line readers that
the corpus and benchmark readers share.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from contrasent.data.lines import DataFormatError, numbered_lines, read_jsonl
from contrasent.data.row_sources import remember_source
from contrasent.data.tables import READERS, read_table

__all__ = ["FORMATS", "DataFormatError", "load_training_file", "numbered_lines", "read_jsonl", "save_training_file"]

FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".json", ".parquet")


def load_training_file(path: str | os.PathLike, max_rows: int | None = None) -> Any:
    """Load a training file into a ``datasets.Dataset``; the format follows the file extension.

    * ``.txt``: one text per line, column ``text``; blank lines are skipped (with one warning).
    * ``.csv`` / ``.tsv``: a header row names the columns; fields stay strings.
    * ``.jsonl``: one JSON object per line, every object with the same keys, each value a string, a
      number, a boolean or null, one type per key.
    * ``.json``: a JSON array of such objects (what :func:`save_training_file` writes), or JSON lines.
    * ``.parquet``: read as is.
    * a folder: a ``datasets.save_to_disk`` folder, read as is.

    ``label`` columns of the text formats are converted to int and ``score`` columns to float; a UTF-8
    byte-order mark is dropped. ``max_rows``: keep only the first rows.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unsupported extension.
        DataFormatError: the file does not parse (the message names the file and line).
    """
    import datasets

    path, lines = Path(path), None
    if path.is_dir():
        dataset = datasets.load_from_disk(str(path))
    elif not path.is_file():
        raise FileNotFoundError(f"training file {path} does not exist")
    elif path.suffix.lower() == ".parquet":
        dataset = datasets.Dataset.from_parquet(str(path))
    elif path.suffix.lower() not in READERS:
        raise ValueError(f"{path}: unsupported file type {path.suffix.lower()!r}; expected one of "
                         f"{', '.join(FORMATS)} or a save_to_disk folder")
    else:
        table = read_table(path)
        if not table.lines:
            raise DataFormatError(f"{path}: the file holds no rows")
        dataset, lines = datasets.Dataset.from_dict(table.columns), table.lines
    if max_rows is not None and max_rows < len(dataset):
        dataset = dataset.select(range(max_rows))
    return remember_source(dataset, str(path), None if lines is None else lines[:len(dataset)])


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
