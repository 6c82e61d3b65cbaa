"""Read the shards that :func:`contrasent.search.corpus_shards.encode_corpus` wrote, one at a time, without
loading the corpus's embeddings into memory (``np.load(mmap_mode="r")``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.search.shard_manifest import MANIFEST_NAME, check_shard_files, read_manifest, shard_ranges


def load_shards(directory: str | os.PathLike, *, verify_checksums: bool = False) -> Iterator[tuple[list[Any], np.ndarray]]:
    """``(ids, embeddings)`` of each shard of ``directory``, in corpus order, one shard at a time.

    ``embeddings`` is a read-only memory map of ``(rows, dim)`` float32 or float16 values (the manifest's
    ``dtype``); ``ids`` the shard's ids, one per row. The manifest is read and checked by this call, the
    shards as they are reached (:func:`contrasent.search.shard_manifest.read_manifest` returns the
    manifest itself: the model, prompt and other settings). Each shard's shape and dtype are checked;
    ``verify_checksums=True`` also checks its files' SHA-256 (reads every byte once more).

    Raises:
        FileNotFoundError: no manifest; while iterating, a shard file missing (named).
        ValueError: the encoding is not complete (run it again to finish); while iterating, a shard whose
            files do not agree with the manifest (named).
    """
    folder = Path(directory)
    manifest = read_manifest(folder)
    if manifest["status"] != "complete":
        written, total = len(manifest["shards"]), len(shard_ranges(manifest["count"], manifest["shard_size"]))
        raise ValueError(f"{folder / MANIFEST_NAME} says the encoding is incomplete ({written} of {total} shards "
                         "written): run the same contrasent encode again to finish it")
    return _shards(folder, manifest, verify_checksums)


def _shards(folder: Path, manifest: dict[str, Any], verify_checksums: bool) -> Iterator[tuple[list[Any], np.ndarray]]:
    for shard in manifest["shards"]:
        check_shard_files(folder, shard, checksums=verify_checksums)
        yield _read_shard(folder, shard, manifest)


def _read_shard(folder: Path, shard: dict[str, Any], manifest: dict[str, Any]) -> tuple[list[Any], np.ndarray]:
    embeddings_path, ids_path = folder / shard["embeddings"], folder / shard["ids"]
    rows = shard["stop"] - shard["start"]
    try:
        embeddings = np.load(embeddings_path, mmap_mode="r", allow_pickle=False)
        ids = json.loads(ids_path.read_text(encoding="utf-8"))
    except (ValueError, EOFError) as error:  # truncated or not a .npy / JSON file
        raise ValueError(f"{embeddings_path} or {ids_path} is damaged ({error})") from None
    expected = (rows, manifest["embedding_dim"])
    if embeddings.shape != expected or embeddings.dtype != np.dtype(manifest["dtype"]):
        raise ValueError(f"{embeddings_path} is {embeddings.dtype} {embeddings.shape}; {folder / MANIFEST_NAME} "
                         f"says {manifest['dtype']} {expected}: the file was changed")
    if not isinstance(ids, list) or len(ids) != rows:
        raise ValueError(f"{ids_path} does not hold a list of {rows} ids, as {folder / MANIFEST_NAME} says")
    return ids, embeddings
