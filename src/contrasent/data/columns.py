"""Column conventions: the columns of a training set choose the training mode.

=========================================  ================  =====================================
columns (in order)                          mode              default loss
=========================================  ================  =====================================
one text column                             ``unsupervised``  InfoNCE over two dropout views (SimCSE)
anchor, positive[, negative_1, ...]        ``pairs``         InfoNCE, in-batch + hard negatives
text, ``label``                             ``labels``        SupCon
text_a, text_b, ``label`` (1 similar, 0 no) ``pair_labels``   MarginContrastive
text_a, text_b, ``score``                   ``scored_pairs``  CoSENT
=========================================  ================  =====================================

Text columns are all columns other than the label or score column, in dataset order; in ``pairs`` mode,
columns named for their role come in role order whatever their order in the file: the anchor
(``anchor``, ``query``, ``sent0``), the positive (``positive``, ``pos``, ``sent1``), other columns, then
the hard negatives (``negative``, ``neg``, ``hard_neg``, ``negative_1`` ...), with a warning when that
changes the order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("label", "labels")
SCORE_COLUMNS = ("score", "scores")
# text columns named for their role in pairs mode; ROLE_NAMES are those a misspelling is checked against
ANCHOR_COLUMNS = ("anchor", "query", "sent0")
POSITIVE_COLUMNS = ("positive", "pos", "sent1")
NEGATIVE_COLUMN = re.compile(r"^(negative|neg|hard_neg|hard_negative)(_?\d+)?$")
ROLE_NAMES = ("anchor", "positive", "negative", "query")

DEFAULT_LOSS = {
    "unsupervised": "infonce",
    "pairs": "infonce",
    "labels": "supcon",
    "pair_labels": "margin_contrastive",
    "scored_pairs": "cosent",
}

# Which loss call signatures (``input_format`` of a loss) each mode can feed.
SUPPORTED_FORMATS = {
    "unsupervised": ("anchor_positive", "views", "labels"),
    "pairs": ("anchor_positive", "views", "labels", "pair_label"),
    "labels": ("labels",),
    "pair_labels": ("pair_label",),
    "scored_pairs": ("scored_pairs",),
}


@dataclass(frozen=True)
class ColumnLayout:
    """The role of each column of a training set.

    Attributes:
        mode: ``unsupervised``, ``pairs``, ``labels``, ``pair_labels`` or ``scored_pairs``.
        text_columns: the text columns, in order (anchor, positive, negatives ... for ``pairs``).
        label_column: integer class labels (``labels``) or 0/1 similarity labels (``pair_labels``).
        score_column: similarity scores (``scored_pairs``).
    """

    mode: str
    text_columns: tuple[str, ...]
    label_column: str | None = None
    score_column: str | None = None

    @property
    def num_views(self) -> int:
        """Embeddings per row: two dropout views of the one text in ``unsupervised`` mode."""
        return 2 if self.mode == "unsupervised" else len(self.text_columns)

    @property
    def hard_negative_columns(self) -> tuple[str, ...]:
        """The ``pairs`` columns named as hard negatives (``negative``, ``negative_1`` ...): the only text
        columns that may hold ``None`` (a row short of mined negatives)."""
        if self.mode != "pairs":
            return ()
        return tuple(name for name in self.text_columns[2:] if NEGATIVE_COLUMN.match(name))


def infer_layout(columns: Sequence[str], source: str = "training data") -> ColumnLayout:
    """Decide the training mode from column names (see the module docstring).

    Raises:
        ValueError: no text column, or a label/score column with a number of text columns that no mode
            takes; the message names ``source`` and the columns.
    """
    columns = list(columns)
    labels = [c for c in columns if c in LABEL_COLUMNS]
    scores = [c for c in columns if c in SCORE_COLUMNS]
    texts = tuple(c for c in columns if c not in LABEL_COLUMNS and c not in SCORE_COLUMNS)
    if len(labels) + len(scores) > 1:
        raise ValueError(f"{source}: columns {columns} hold more than one label/score column ({labels + scores})")
    if not texts:
        raise ValueError(f"{source}: columns {columns} hold no text column")
    if labels:
        if len(texts) == 1:
            return ColumnLayout("labels", texts, label_column=labels[0])
        if len(texts) == 2:
            return ColumnLayout("pair_labels", texts, label_column=labels[0])
        raise ValueError(f"{source}: a {labels[0]!r} column goes with 1 text column (text, label) or 2 "
                         f"(text_a, text_b, label); got text columns {list(texts)}")
    if scores:
        if len(texts) != 2:
            raise ValueError(f"{source}: a {scores[0]!r} column goes with exactly 2 text columns "
                             f"(text_a, text_b, score); got text columns {list(texts)}")
        return ColumnLayout("scored_pairs", texts, score_column=scores[0])
    if len(texts) == 1:
        return ColumnLayout("unsupervised", texts)
    return ColumnLayout("pairs", _in_role_order(texts, source))


def _in_role_order(texts: tuple[str, ...], source: str) -> tuple[str, ...]:
    """Anchor, positive, unnamed columns, hard negatives: a file's column order is not always its author's."""
    def rank(name: str) -> int:
        if name in ANCHOR_COLUMNS:
            return 0
        if name in POSITIVE_COLUMNS:
            return 1
        return 3 if NEGATIVE_COLUMN.match(name) else 2

    ordered = tuple(sorted(texts, key=rank))  # stable: the file's order among equals
    if ordered != texts:
        logger.warning("%s: columns %s are taken in the order of their roles: %s (anchor, positive, "
                       "hard negatives)", source, list(texts), list(ordered))
    return ordered
