"""Fixtures for the evaluation tests: toy encoders (the disk-cached all-MiniLM-L6-v2, ``minilm``, is in
``tests/conftest.py``, shared with the mining tests)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class TableEncoder:
    """A model whose embedding of each text is looked up in a table: exact, hand-checkable similarities."""

    def __init__(self, table: Mapping[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([self.table[text] for text in texts], dtype=np.float32)
