"""Check a training set once, before training: every problem named by row and column."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

from contrasent.data.columns import LABEL_COLUMNS, SCORE_COLUMNS, ColumnLayout


def validate_training_data(
    dataset: Any, layout: ColumnLayout, source: str = "training data", score_range: Sequence[float] | None = None
) -> None:
    """Raise on values that would silently train on garbage.

    Text columns must hold non-empty strings; label columns integers (integral floats pass: Arrow
    stores a column as float as soon as one value is; 0/1 for ``pair_labels``); score
    columns finite numbers. Rows are numbered from 0 as in the dataset.

    ``score_range``: (low, high) bounds every score must fall in, when given.

    Raises:
        ValueError / TypeError: naming ``source``, the row, the column and what was expected.
    """
    if len(dataset) == 0:
        raise ValueError(f"{source}: the dataset is empty")
    for column in layout.text_columns:
        for row, text in enumerate(dataset[column]):
            if not isinstance(text, str):
                close = difflib.get_close_matches(column, LABEL_COLUMNS + SCORE_COLUMNS, n=1)
                hint = f"; if it holds labels or scores, name it {close[0]!r}" if close and text is not None else ""
                if text is None and column.startswith("negative"):
                    hint = ("; mine_hard_negatives leaves None where too few negatives qualify: widen its range or "
                            f"margins, or drop those rows (dataset.filter(lambda row: row[{column!r}] is not None))")
                raise TypeError(f"{source}, row {row}, column {column!r}: expected a string, got "
                                f"{type(text).__name__} ({text!r}){hint}")
            if not text.strip():
                raise ValueError(f"{source}, row {row}, column {column!r}: empty or whitespace-only text")
    if layout.label_column is not None:
        for row, label in enumerate(dataset[layout.label_column]):
            integral = isinstance(label, int) or (isinstance(label, float) and label.is_integer())
            if isinstance(label, bool) or not integral:
                raise TypeError(f"{source}, row {row}, column {layout.label_column!r}: expected an integer label, "
                                f"got {type(label).__name__} ({label!r})")
            if layout.mode == "pair_labels" and label not in (0, 1):
                raise ValueError(f"{source}, row {row}, column {layout.label_column!r}: expected 1 (similar) "
                                 f"or 0 (dissimilar), got {label}")
    if layout.score_column is not None:
        for row, score in enumerate(dataset[layout.score_column]):
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                raise ValueError(f"{source}, row {row}, column {layout.score_column!r}: expected a finite "
                                 f"number, got {score!r}")
            if score_range is not None and not score_range[0] <= score <= score_range[1]:
                raise ValueError(f"{source}, row {row}, column {layout.score_column!r}: {score} is outside the "
                                 f"declared score range [{score_range[0]}, {score_range[1]}]")
