"""Small training sets shared by the step-equivalence tests (texts of varied lengths, so chunks differ)."""

from __future__ import annotations

import datasets


def small_dataset(kind: str, rows: int) -> datasets.Dataset:
    """``"triplets"``: (anchor, positive, negative) rows; ``"short"``: (anchor, positive, negative_1,
    negative_2) rows, some short of negatives (``None``, as mining leaves them), row 1 with none at all;
    otherwise (text, label) rows with 3 labels."""
    if kind == "short":
        return datasets.Dataset.from_dict({
            "anchor": [f"a question about topic {i} and more words" * (1 + i % 3) for i in range(rows)],
            "positive": [f"an answer on topic {i}" for i in range(rows)],
            "negative_1": [None if i == 1 else f"something unrelated number {i} here" * (1 + i % 2)
                           for i in range(rows)],
            "negative_2": [None if i % 3 == 1 else f"another text {i}" for i in range(rows)],
        })
    if kind == "triplets":
        return datasets.Dataset.from_dict({
            "anchor": [f"a question about topic {i} and more words" * (1 + i % 3) for i in range(rows)],
            "positive": [f"an answer on topic {i}" for i in range(rows)],
            "negative": [f"something unrelated number {i} here" * (1 + i % 2) for i in range(rows)],
        })
    return datasets.Dataset.from_dict({
        "text": [f"sentence {i} of class {i % 3} with words" * (1 + i % 2) for i in range(rows)],
        "label": [i % 3 for i in range(rows)],
    })
