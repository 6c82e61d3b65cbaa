"""Encode a whole corpus file into a folder of shards that an interrupted run resumes: ``contrasent encode``.

The folder (:mod:`contrasent.search.shard_manifest` describes ``manifest.json``)::

    manifest.json            settings, corpus, status, and each finished shard's rows and SHA-256
    embeddings-00000.npy     (rows, dim) float32 or float16, rows 0 .. shard_size - 1 in corpus order
    ids-00000.json           the ids of the same rows, a JSON list
    embeddings-00001.npy ...

How it runs. The corpus is read whole by :func:`contrasent.search.corpus.read_corpus` (ids and texts in
memory; the embeddings never are: one shard at a time). The manifest is written first, with the settings
and ``"status": "incomplete"``. Each shard (``shard_size`` consecutive rows) is encoded longest texts
first, so that batches hold texts of similar length, and its rows are put back in corpus order; its two
files are written atomically (temporary file, ``fsync``, rename), then the manifest is rewritten
(atomically) to record the shard and its checksums. A kill at any moment loses at most the shard being
encoded. Running the same call again checks that the manifest was written with the same model and
settings (else refuses, naming the field) and that the finished shards are intact (else names the
file), and encodes the shards it does not record (from the first missing one); finished shards are never
rewritten. The last manifest says ``"status": "complete"``. The batch size is not a setting: it may
change between runs (rows then differ from an uninterrupted run's by float rounding only).

Under ``torch.distributed`` (``torchrun``, a process group initialized before the call), every process
calls it with the same arguments: each encodes a contiguous part of the missing shards, and rank 0 alone
writes the manifest (:mod:`contrasent.search.shard_ranks`); the files are those of one process.

Read the shards with :func:`contrasent.search.shard_reader.load_shards`.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contrasent.models.atomic_file import temporary_target, write_atomically
from contrasent.models.atomic_folder import check_replaceable
from contrasent.search.corpus import read_corpus
from contrasent.search.index import effective_prompt
from contrasent.search.index_files import check_writable
from contrasent.search.model_probe import model_probe
from contrasent.search.shard_manifest import (
    MANIFEST_NAME,
    SHARDS_FOLDER,
    SHARDS_FORMAT,
    SHARDS_VERSION,
    STORED_DTYPES,
    check_same_settings,
    check_shard_files,
    file_sha256,
    read_manifest,
    shard_entry,
    shard_file_names,
    shard_ranges,
    write_manifest,
)
from contrasent.search.shard_ranks import contiguous_part, gather, on_rank_zero, rank_and_world
from contrasent.search.text_checks import check_positive_int

if TYPE_CHECKING:
    from contrasent.models.encoder import SentenceEncoder

# Texts per encode call, in batches: the progress bar moves once per call. Each call sorts its texts by
# token count again, so a larger value would not speed up the encoding, only make the bar jumpier.
_BATCHES_PER_CALL = 16


def encode_corpus(
    model: SentenceEncoder | str | os.PathLike | Callable[[], SentenceEncoder],
    corpus: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    shard_size: int = 10_000,
    batch_size: int = 64,
    dtype: str = "float32",
    prompt_name: str | None = None,
    prompt: str | None = None,
    truncate_dim: int | None = None,
    normalize: bool | None = None,
    model_name: str | None = None,
    show_progress_bar: bool = True,
) -> dict[str, Any]:
    """Encode every document of ``corpus`` into shards in ``output_dir``, resuming an interrupted run.

    Args:
        model: a :class:`~contrasent.SentenceEncoder`, a folder / Hub id to load one from, or a function
            returning one, called after the corpus is read (``contrasent encode`` loads its model so: a bad
            corpus is reported before a model is loaded).
        corpus: a corpus file, read by :func:`contrasent.search.corpus.read_corpus` (BEIR ``corpus.jsonl``:
            ``(title + " " + text).strip()``; any other extension: one text per line).
        output_dir: the shards' folder: new, empty, or one this function wrote (resumed).
        shard_size: corpus rows per shard (the unit of resumption).
        batch_size: texts per forward pass.
        dtype: the stored dtype, ``"float32"`` or ``"float16"`` (half the disk; ~1e-3 relative rounding).
        prompt_name, prompt: the documents' prompt (a name of the model's, or the string; ``""`` for
            none); default: the model's document prompt, else its default prompt, as
            :class:`~contrasent.SemanticIndex` chooses it.
        truncate_dim: keep the first ``truncate_dim`` dimensions (default: the model's setting, else all).
        normalize: L2-normalize the rows (default: the model's setting).
        model_name: recorded in the manifest (default: ``model`` when it is a path or id, else the
            model's folder).
        show_progress_bar: a bar counting the encoded texts and their rate (on rank 0).

    Returns:
        the final manifest (``"status": "complete"``).

    Raises:
        FileNotFoundError / DataFormatError: the corpus file is missing or malformed (line named).
        FileExistsError: ``output_dir`` is a file, or a folder of other things without a ``manifest.json``.
        OSError: ``output_dir`` cannot be written.
        ValueError: an empty corpus; a bad option; ``output_dir`` holds a manifest written by another model,
            corpus or settings (the manifest and the field named), or a finished shard that is damaged.
    """
    if dtype not in STORED_DTYPES:
        raise ValueError(f"dtype must be one of {STORED_DTYPES}, got {dtype!r}")
    shard_size = check_positive_int(shard_size, "shard_size")
    batch_size = check_positive_int(batch_size, "batch_size")
    folder = on_rank_zero(lambda: _checked_output(output_dir))  # a file or a user's folder: refused before any work
    ids, texts = read_corpus(corpus)
    if not texts:
        raise ValueError(f"corpus file {corpus} holds no documents: there is nothing to encode")
    if isinstance(model, (str, os.PathLike)):
        from contrasent.models.encoder import SentenceEncoder

        model_name = model_name or str(model)
        model = SentenceEncoder.from_pretrained(model)
    elif not hasattr(model, "encode"):  # a loader, called once the corpus and the folder passed their checks
        model = model()
    settings = _settings(model, Path(corpus), len(texts), shard_size, dtype, prompt_name, prompt, truncate_dim,
                         normalize, model_name)
    manifest = on_rank_zero(lambda: _resumable_manifest(folder, settings, model))
    ranges = shard_ranges(len(texts), shard_size)
    recorded = {shard["start"] for shard in manifest["shards"]}
    missing = [number for number, (start, _) in enumerate(ranges) if start not in recorded]
    rank, world = rank_and_world()
    mine = contiguous_part(missing, rank, world)
    done = len(texts) - sum(stop - start for start, stop in (ranges[number] for number in missing))
    progress = _progress_bar(len(texts), done, show_progress_bar and rank == 0)
    try:
        # one round: each rank encodes and writes one shard, then rank 0 records them all; the shards are
        # finished once the manifest records them
        for step in range(-(-len(missing) // world)):
            entry = None
            if step < len(mine):
                start, stop = ranges[mine[step]]
                rows = _encode_block(model, texts[start:stop], batch_size, settings, progress)
                entry = _write_shard(folder, mine[step], start, stop, rows.astype(dtype), ids[start:stop])
            entries = gather(entry)
            if rank == 0:
                for other in filter(None, entries[1:]):  # rank 0's own rows were counted as they were encoded
                    progress.update(other["stop"] - other["start"])
                manifest["shards"] = sorted([*manifest["shards"], *filter(None, entries)], key=lambda s: s["start"])
                write_manifest(folder, manifest)
    finally:
        progress.close()

    def complete() -> dict[str, Any]:
        manifest["status"] = "complete"
        write_manifest(folder, manifest)
        return manifest

    return on_rank_zero(complete)  # a barrier too: no rank returns before the manifest says complete


def _checked_output(output_dir: str | os.PathLike) -> Path:
    """``output_dir``, absolute, when shards may be written there: absent, empty, or holding a manifest."""
    folder = check_replaceable(output_dir, SHARDS_FOLDER)
    check_writable(folder / MANIFEST_NAME, "the corpus embeddings")
    return folder


def _settings(
    model: Any, corpus: Path, count: int, shard_size: int, dtype: str, prompt_name: str | None, prompt: str | None,
    truncate_dim: int | None, normalize: bool | None, model_name: str | None,
) -> dict[str, Any]:
    """Everything the manifest records before the first shard: what the rows depend on."""
    if truncate_dim is not None:
        from contrasent.models.encoder import check_truncate_dim

        check_truncate_dim(truncate_dim, model.full_dim)
    truncate_dim = truncate_dim or model.config.truncate_dim
    if model_name is None:
        backbone_config = getattr(getattr(model, "backbone", None), "config", None)
        model_name = getattr(backbone_config, "_name_or_path", None) or None
    return {
        "format": SHARDS_FORMAT, "version": SHARDS_VERSION, "status": "incomplete",
        "model": model_name, "model_probe": model_probe(model, truncate_dim),
        "embedding_dim": truncate_dim or model.embedding_dim, "dtype": dtype,
        "prompt": effective_prompt(model, "document", prompt, prompt_name), "truncate_dim": truncate_dim,
        "normalize": bool(model.config.normalize if normalize is None else normalize),
        "corpus": {"file": corpus.name, "size": corpus.stat().st_size, "sha256": file_sha256(corpus), "rows": count},
        "shard_size": shard_size, "count": count, "shards": [],
    }


def _resumable_manifest(folder: Path, settings: dict[str, Any], model: Any) -> dict[str, Any]:
    """The manifest to continue from: the folder's, when written with these settings and its finished
    shards are intact; else (no manifest yet) a new one, written now, before any shard."""
    if not (folder / MANIFEST_NAME).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(folder, settings)
        return settings
    manifest = read_manifest(folder)
    check_same_settings(folder, manifest, settings, model)
    for shard in manifest["shards"]:
        check_shard_files(folder, shard)
    for entry in folder.iterdir():  # what a killed run left half-written: never published, never recorded
        target = temporary_target(entry.name)
        if target is not None and SHARDS_FOLDER.is_artifact(target):
            entry.unlink(missing_ok=True)
    return manifest


def _encode_block(model: Any, texts: list[str], batch_size: int, settings: dict[str, Any], progress: Any) -> np.ndarray:
    """(len(texts), dim) float32 rows of one shard, in the shard's order. The texts are encoded longest
    first (by characters; ``encode`` sorts each call's texts by tokens again), so that each batch is
    padded little, and every row is put back at its text's place."""
    order = sorted(range(len(texts)), key=lambda position: -len(texts[position]))
    rows = np.empty((len(texts), settings["embedding_dim"]), dtype=np.float32)
    step = batch_size * _BATCHES_PER_CALL
    for begin in range(0, len(order), step):
        positions = order[begin:begin + step]
        rows[positions] = np.asarray(model.encode(
            [texts[position] for position in positions], batch_size=batch_size, normalize=settings["normalize"],
            prompt=settings["prompt"], truncate_dim=settings["truncate_dim"], show_progress_bar=False,
        ))
        progress.update(len(positions))
    return rows


def _write_shard(folder: Path, number: int, start: int, stop: int, rows: np.ndarray, ids: list[Any]) -> dict[str, Any]:
    """Write a shard's two files atomically; return its manifest entry (with the bytes' SHA-256)."""
    buffer = io.BytesIO()
    np.save(buffer, rows, allow_pickle=False)
    embeddings_bytes = buffer.getvalue()
    ids_bytes = (json.dumps(ids, ensure_ascii=False) + "\n").encode("utf-8")
    embeddings_name, ids_name = shard_file_names(number)
    write_atomically(folder / embeddings_name, embeddings_bytes)
    write_atomically(folder / ids_name, ids_bytes)
    return shard_entry(number, start, stop, embeddings_bytes, ids_bytes)


def _progress_bar(total: int, done: int, show: bool) -> Any:
    """A bar over the whole corpus (texts/s, the figure users compare), starting at the rows already done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="Encoding", unit="text", disable=not show)
