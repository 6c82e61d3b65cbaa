"""Where each row of a training set came from, so that every error names a row the way the user finds it.

A row read from a text file is named by its file and line (``train.csv, line 14``: the line an editor
shows, header and blank lines counted); any other row by its index in the data set (``train_dataset[12]``,
``train.parquet[12]``: what ``dataset[12]`` returns). :func:`~contrasent.data.files.load_training_file`
remembers the lines of the data set it returns (:func:`remember_source`); a data set derived from it
(``select``, ``shuffle``, ``filter`` ...) is a new object whose rows are named by index again, never by
a line they no longer sit on.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SOURCES: weakref.WeakKeyDictionary[Any, RowSource] = weakref.WeakKeyDictionary()
SHOWN_ROWS = 10


@dataclass(frozen=True)
class RowSource:
    """A data set's name (a file path, or e.g. ``train_dataset``) and, for a text file, each row's line."""

    name: str
    lines: Sequence[int] | None = None

    def row(self, index: int) -> str:
        """``'train.csv, line 14'``, or ``'train_dataset[12]'`` without lines."""
        return f"{self.name}[{index}]" if self.lines is None else f"{self.name}, line {self.lines[index]}"

    def rows(self, indices: Sequence[int]) -> str:
        """Several rows: ``'train.csv, lines 7, 9'`` or ``'train_dataset[3], train_dataset[5]'`` (the first
        :data:`SHOWN_ROWS`, then how many more)."""
        shown = list(indices[:SHOWN_ROWS])
        more = f" and {len(indices) - SHOWN_ROWS} more" if len(indices) > SHOWN_ROWS else ""
        if self.lines is None:
            return ", ".join(self.row(index) for index in shown) + more
        label = "line" if len(indices) == 1 else "lines"
        return f"{self.name}, {label} {', '.join(str(self.lines[index]) for index in shown)}{more}"


def remember_source(dataset: Any, name: str, lines: Sequence[int] | None = None) -> Any:
    """Record that ``dataset``'s rows come from ``name`` (row i from line ``lines[i]``); returns ``dataset``."""
    if lines is not None and len(lines) != len(dataset):
        raise ValueError(f"{name}: {len(lines)} line numbers for {len(dataset)} rows")
    _SOURCES[dataset] = RowSource(name, tuple(lines) if lines is not None else None)
    return dataset


def row_source(dataset: Any, default_name: str) -> RowSource:
    """Where ``dataset``'s rows come from: as remembered, else ``default_name`` with rows named by index."""
    try:
        return _SOURCES.get(dataset) or RowSource(default_name)
    except TypeError:  # an unhashable data set (a dict of columns): never remembered
        return RowSource(default_name)
