"""Columns that would train on the wrong thing: numbers, labels or ids read as texts, misspelled names.

The training mode follows the column names (:mod:`contrasent.data.columns`), so a header ``text,lable``
or ``text_a,text_b,similarity`` makes the digits or scores texts of a ``pairs`` data set, which then
trains without complaint. :func:`check_text_columns` looks at every text column before training:

* a column of numbers (most values), or named like an id (``id``, ``idx``, ``doc_id`` ...): an error;
* a column whose name is one edit away from ``label`` or ``score`` (``lable``, ``Score``, ``socre``): an
  error when its values look like labels (numbers, or a few repeated single words), else a warning;
* a column of a few single words repeated over many rows (``entailment``, ``neutral`` ...): a warning;
* a column one edit away from a text role (``postive``, ``negtive`` ...): a warning.

Each message names the column, the mode chosen and what the column is used as.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from contrasent.data.columns import LABEL_COLUMNS, ROLE_NAMES, SCORE_COLUMNS, ColumnLayout

logger = logging.getLogger(__name__)

SAMPLE = 10_000  # values looked at per column: enough to tell numbers or labels from texts
ID_NAMES = ("id", "_id", "idx", "index", "uid", "guid")
LABEL_LIKE_DISTINCT = 10  # at most this many distinct single words ...
LABEL_LIKE_REPEATS = 5  # ... each repeated this often on average: labels, not texts


def check_text_columns(dataset: Any, layout: ColumnLayout, source: str) -> None:
    """Raise a ``ValueError`` for a text column that cannot hold texts, warn for one that looks wrong
    (see the module docstring); the message names ``source``, the column and the mode chosen."""
    for column in layout.text_columns:
        values = dataset[:SAMPLE][column]  # the first rows only: a million-row column stays on disk
        problem = _problem(column, values)
        if problem is None:
            continue
        message, fatal = problem
        message = f"{source}: column {column!r} {message}; it is used as {describe(layout, column)}"
        if fatal:
            raise ValueError(message)
        logger.warning(message)


def describe(layout: ColumnLayout, column: str) -> str:
    """What ``column`` is in ``layout``: ``"the positive of 'pairs' data (anchor 'a', positive 'b')"``."""
    roles = _roles(layout)
    listing = ", ".join(f"{role} {name!r}" for name, role in roles.items())
    return f"the {roles[column]} of {layout.mode!r} data ({listing})"


def _roles(layout: ColumnLayout) -> dict[str, str]:
    columns = layout.text_columns
    if layout.mode == "unsupervised":
        return {columns[0]: "text"}
    if layout.mode == "pairs":
        return {name: ("anchor", "positive")[i] if i < 2 else "hard negative" for i, name in enumerate(columns)}
    if layout.mode == "labels":
        return {columns[0]: "text"}
    return {name: f"text {i + 1} of a pair" for i, name in enumerate(columns)}


def _problem(column: str, values: list[Any]) -> tuple[str, bool] | None:
    """(what is wrong with the column, whether that is an error), or ``None``."""
    present = [value for value in values if value is not None]
    numbers = sum(map(_is_number, present))
    label_like = _label_like(present)
    close = _close_name(column, LABEL_COLUMNS + SCORE_COLUMNS)
    hint = f" (did you mean {close!r}?)" if close else ""
    if present and numbers > len(present) / 2:
        return (f"holds numbers ({_examples(present)}), not texts{hint}: name a similarity score column 'score' "
                "and a class label column 'label'"), True
    if column.lower() in ID_NAMES or column.lower().endswith("_id"):
        return f"looks like an id column ({_examples(present)}): remove it from the training data", True
    if close:
        return f"is read as texts, not as {close!r}{hint}; rename it if it holds {close}s", label_like is not None
    if label_like is not None:
        return (f"holds only {len(label_like)} distinct single words ({_examples(label_like)}) over {len(present)} "
                "rows, which look like labels, not texts: give class labels as integers in a 'label' column"), False
    role = _close_name(column, ROLE_NAMES)
    if role:
        return f"is not a known column name (did you mean {role!r}?)", False
    return None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if not isinstance(value, str):
        return False
    try:
        float(value)  # surrounding whitespace allowed, as in "4.5 "
    except ValueError:
        return False
    return True


def _label_like(values: list[Any]) -> list[str] | None:
    """The distinct values when they are a few single words repeated over many rows, else ``None``."""
    counts = Counter(value for value in values if isinstance(value, str))
    if not counts or len(counts) > LABEL_LIKE_DISTINCT or len(values) < LABEL_LIKE_REPEATS * len(counts):
        return None
    if any(len(value.split()) != 1 for value in counts):
        return None
    return sorted(counts)


def _close_name(name: str, known: tuple[str, ...]) -> str | None:
    """The known name ``name`` is one edit (insert, delete, substitute, swap; or case) away from, if not itself."""
    if name in known:
        return None
    lowered = name.lower()
    return next((candidate for candidate in known if _one_edit(lowered, candidate)), None)


def _one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        differ = [i for i in range(len(a)) if a[i] != b[i]]
        return len(differ) == 1 or (len(differ) == 2 and differ[1] == differ[0] + 1
                                     and a[differ[0]] == b[differ[1]] and a[differ[1]] == b[differ[0]])
    shorter, longer = sorted((a, b), key=len)
    return any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer)))


def _examples(values: list[Any], count: int = 3) -> str:
    shown = list(dict.fromkeys(map(repr, values)))  # by repr: values of any type, hashable or not
    return ", ".join(shown[:count]) + (", ..." if len(shown) > count else "")
