"""Fixtures for the evaluation tests: toy encoders and a disk-cached all-MiniLM-L6-v2.

Encoding SciFact's corpus with all-MiniLM-L6-v2 takes minutes on a CPU, so the real-model embeddings are
computed once per test session and kept in pytest's cache folder (``.pytest_cache``) between sessions,
keyed by the model's weights and sequence length; delete that folder (or run ``pytest --cache-clear``) to
recompute them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest


class TableEncoder:
    """A model whose embedding of each text is looked up in a table: exact, hand-checkable similarities."""

    def __init__(self, table: Mapping[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([self.table[text] for text in texts], dtype=np.float32)


class CachedEncoder:
    """Wraps a model and remembers each text's embedding, persisted as ``texts.json`` + ``embeddings.npy``."""

    def __init__(self, model, folder: Path) -> None:
        self.model = model
        self.folder = folder
        self.memory: dict[str, np.ndarray] = {}
        self.unsaved = 0
        try:
            texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
            embeddings = np.load(folder / "embeddings.npy")
        except (OSError, ValueError):  # no cache yet, or a damaged one: start afresh
            texts, embeddings = [], []
        if len(texts) == len(embeddings):
            self.memory = dict(zip(texts, embeddings))

    def encode(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        new = [text for text in dict.fromkeys(texts) if text not in self.memory]
        if new:
            embeddings = self.model.encode(new, batch_size=batch_size, show_progress_bar=False)
            self.memory.update(zip(new, np.asarray(embeddings, dtype=np.float32)))
            self.unsaved += len(new)
            if self.unsaved >= 2048:  # keep long encodings if the session is interrupted
                self.save()
        return np.stack([self.memory[text] for text in texts])

    def save(self) -> None:
        if self.unsaved:
            self.unsaved = 0
            self.folder.mkdir(parents=True, exist_ok=True)
            texts = list(self.memory)
            # write aside, then rename: an interrupted save leaves the previous cache intact
            (self.folder / "texts.json.tmp").write_text(json.dumps(texts), encoding="utf-8")
            with (self.folder / "embeddings.npy.tmp").open("wb") as handle:
                np.save(handle, np.stack([self.memory[t] for t in texts]))
            os.replace(self.folder / "embeddings.npy.tmp", self.folder / "embeddings.npy")
            os.replace(self.folder / "texts.json.tmp", self.folder / "texts.json")


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path, request: pytest.FixtureRequest) -> Iterator[CachedEncoder]:
    """all-MiniLM-L6-v2 (sentence-transformers, max_seq_length 256 as MTEB/BEIR run it), disk-cached."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    weights = hashlib.sha256((minilm_dir / "model.safetensors").read_bytes()).hexdigest()[:16]
    key = f"minilm-{weights}-len{model.max_seq_length}"
    encoder = CachedEncoder(model, Path(request.config.cache.mkdir("contrasent_embeddings")) / key)
    yield encoder
    encoder.save()
