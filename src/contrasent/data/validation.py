"""Check a training set once, before training: every problem named by row and column.

Rows are named where the user finds them (:mod:`contrasent.data.row_sources`): ``train.csv, line 14``
for a data set read by :func:`~contrasent.data.files.load_training_file`, ``train_dataset[12]`` (its
index) otherwise.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

from contrasent.data.column_checks import check_text_columns
from contrasent.data.columns import LABEL_COLUMNS, SCORE_COLUMNS, ColumnLayout
from contrasent.data.row_sources import RowSource, row_source


def validate_training_data(
    dataset: Any, layout: ColumnLayout, source: str = "training data", score_range: Sequence[float] | None = None
) -> None:
    """Raise on values that would silently train on garbage.

    Text columns must hold texts (not numbers, ids or labels: :mod:`contrasent.data.column_checks`), each
    a non-empty string, except that hard-negative columns (``negative``, ``negative_1`` ... of ``pairs``
    data) may hold ``None``: a row that :func:`~contrasent.search.mining.mine_hard_negatives` left short of
    negatives trains with those it has, plus the in-batch negatives (the step leaves the missing ones out of
    the loss, :mod:`contrasent.training.step`); label columns integers (integral floats pass: Arrow stores a column as float as
    soon as one value is; 0/1 for ``pair_labels``); score columns finite numbers. The rows must not all be
    the same, nor all labels or all scores: the loss would be 0, or pull every text together.

    ``source`` names a data set whose rows were not read from a file; ``score_range``: (low, high) bounds
    every score must fall in, when given.

    Raises:
        ValueError / TypeError: naming the file and line (or ``source`` and row index), the column and what
            was expected.
    """
    if len(dataset) == 0:
        raise ValueError(f"{source}: the dataset is empty")
    rows = row_source(dataset, source)
    check_text_columns(dataset, layout, rows.name)
    for column in layout.text_columns:
        _check_texts(dataset[column], column, rows, may_be_missing=column in layout.hard_negative_columns)
    if layout.label_column is not None:
        _check_labels(dataset[layout.label_column], layout, rows)
    if layout.score_column is not None:
        _check_scores(dataset[layout.score_column], layout.score_column, rows, score_range)
    _check_rows_differ(dataset, layout, rows)


def _check_texts(texts: list[Any], column: str, rows: RowSource, may_be_missing: bool = False) -> None:
    """Every value a non-blank string; ``None`` too when ``may_be_missing`` (a hard negative a row lacks)."""
    for row, text in enumerate(texts):
        if text is None and may_be_missing:
            continue
        if not isinstance(text, str):
            close = difflib.get_close_matches(column, LABEL_COLUMNS + SCORE_COLUMNS, n=1)
            hint = f"; if it holds labels or scores, name it {close[0]!r}" if close and text is not None else ""
            raise TypeError(f"{rows.row(row)}, column {column!r}: expected a string, got "
                            f"{type(text).__name__} ({text!r}){hint}")
        if not text.strip():
            raise ValueError(f"{rows.row(row)}, column {column!r}: empty or whitespace-only text")


def _check_labels(labels: list[Any], layout: ColumnLayout, rows: RowSource) -> None:
    column = layout.label_column
    for row, label in enumerate(labels):
        integral = isinstance(label, int) or (isinstance(label, float) and label.is_integer())
        if isinstance(label, bool) or not integral:
            raise TypeError(f"{rows.row(row)}, column {column!r}: expected an integer label, "
                            f"got {type(label).__name__} ({label!r})")
        if layout.mode == "pair_labels" and label not in (0, 1):
            raise ValueError(f"{rows.row(row)}, column {column!r}: expected 1 (similar) or 0 (dissimilar), got {label}")
    if len(labels) > 1 and len(set(labels)) == 1:
        needs = ("similar (1) and dissimilar (0) pairs" if layout.mode == "pair_labels"
                 else "at least two labels: the other labels are the negatives")
        raise ValueError(f"{rows.name}: every row has {column!r} {labels[0]}; training needs {needs}")


def _check_scores(scores: list[Any], column: str, rows: RowSource, score_range: Sequence[float] | None) -> None:
    for row, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f"{rows.row(row)}, column {column!r}: expected a finite number, got {score!r}")
        if score_range is not None and not score_range[0] <= score <= score_range[1]:
            raise ValueError(f"{rows.row(row)}, column {column!r}: {score} is outside the declared score range "
                             f"[{score_range[0]}, {score_range[1]}]")
    if len(scores) > 1 and len(set(scores)) == 1:
        raise ValueError(f"{rows.name}: every row has {column!r} {scores[0]}; a score-ranking loss learns from "
                         "pairs whose scores differ, and there are none")


def _check_rows_differ(dataset: Any, layout: ColumnLayout, rows: RowSource) -> None:
    """All rows the same: every in-batch negative is a duplicate, masked, so the loss and gradient are 0."""
    columns = [*layout.text_columns, *filter(None, (layout.label_column, layout.score_column))]
    if len(dataset) > 1 and all(len(set(dataset[column])) == 1 for column in columns):
        first = ", ".join(f"{column}={_short(dataset[0][column])}" for column in columns)
        raise ValueError(f"{rows.name}: all {len(dataset)} rows are the same ({first}); "
                         "contrastive training learns from the differences between rows (the other rows of a "
                         "batch are the negatives): with one distinct row the loss is 0 and nothing is learnt")


def _short(value: Any, length: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= length else text[:length - 4] + "...'"
