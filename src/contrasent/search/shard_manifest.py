"""``manifest.json``: what a folder of corpus embedding shards (:func:`contrasent.search.corpus_shards.encode_corpus`)
holds, and the checks that keep its shards from mixing.

The manifest records every setting that changes the rows: the model (its name, and its embeddings of
the probe sentences of :mod:`contrasent.search.model_probe`), the dimension, the stored dtype, the
documents' prompt, ``truncate_dim``, ``normalize``, the corpus (file name, size, SHA-256, row count) and
the shard size; then each finished shard's row range and the SHA-256 of its two files
(``embeddings-00000.npy``, ``ids-00000.json``), and a ``status``: ``"incomplete"`` while shards are
missing, ``"complete"`` at the end.

Why so much: an interrupted encoding is resumed by running it again, and a resume under another model or
other settings would append rows that do not belong with the finished ones (another space, another
dtype, other row ranges) without any error. So a run whose settings differ from the manifest's is
refused, naming the manifest and the field; a finished shard whose file is missing or changed is named
too, never silently encoded again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from contrasent.models.atomic_file import write_atomically
from contrasent.models.atomic_folder import FolderKind
from contrasent.search.index_checks import FieldRules, check_fields, read_format_file
from contrasent.search.model_probe import SAME_MODEL_MIN_COSINE, probe_cosine
from contrasent.search.text_checks import short_repr

MANIFEST_NAME = "manifest.json"
SHARDS_FORMAT = "contrasent-corpus-embeddings"
SHARDS_VERSION = 1
STORED_DTYPES = ("float32", "float16")
# what encode_corpus writes; check_replaceable lets it write only into a folder holding a manifest.json
SHARDS_FOLDER = FolderKind("corpus embeddings", MANIFEST_NAME, (MANIFEST_NAME, "embeddings-*.npy", "ids-*.json"))
# the settings a resume must share with the manifest, in the order they are compared (the model last:
# comparing it means encoding the probe sentences)
COMPARED_SETTINGS = ("embedding_dim", "dtype", "prompt", "truncate_dim", "normalize", "shard_size")


def shard_file_names(number: int) -> tuple[str, str]:
    """The embeddings and ids files of shard ``number``."""
    return f"embeddings-{number:05d}.npy", f"ids-{number:05d}.json"


def shard_ranges(count: int, shard_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` corpus rows of each shard: ``shard_size`` consecutive rows, the last one shorter."""
    return [(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Replace ``folder/manifest.json`` atomically: a kill leaves the previous manifest whole."""
    write_atomically(folder / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))


def read_manifest(folder: Path) -> dict[str, Any]:
    """``folder/manifest.json``, every field checked, its shards' row ranges included.

    Raises:
        FileNotFoundError: no manifest.
        ValueError: not JSON, another format or version, a field missing or of the wrong kind (named).
    """
    path = folder / MANIFEST_NAME
    manifest = read_format_file(path, SHARDS_FORMAT, (SHARDS_VERSION,), str(SHARDS_VERSION),
                                f"{folder} holds no corpus embeddings written by contrasent encode")
    rules: FieldRules = {
        "status": ("'incomplete' or 'complete'", lambda v: v in ("incomplete", "complete")),
        "model": ("a string or null", lambda v: v is None or isinstance(v, str)),
        "model_probe": ('{"texts": [...], "embeddings": [[...], ...]}', _is_probe),
        "embedding_dim": ("a positive integer", _is_positive_int),
        "dtype": (f"one of {STORED_DTYPES}", lambda v: v in STORED_DTYPES),
        "prompt": ("a string", lambda v: isinstance(v, str)),
        "truncate_dim": ("a positive integer or null", lambda v: v is None or _is_positive_int(v)),
        "normalize": ("true or false", lambda v: isinstance(v, bool)),
        "corpus": ('{"file": ..., "size": ..., "sha256": ..., "rows": ...}', _is_corpus),
        "shard_size": ("a positive integer", _is_positive_int),
        "count": ("a positive integer", _is_positive_int),
        "shards": ("a list of shards", lambda v: isinstance(v, list)),
    }
    check_fields(path, manifest, rules)
    _check_shard_entries(path, manifest)
    return manifest


def _check_shard_entries(path: Path, manifest: dict[str, Any]) -> None:
    """Raise unless each recorded shard is one of the corpus's shards (its files and rows), in increasing
    order without repeats (a prefix of the shards, or any subset when several ranks wrote them), all of
    them when the status is complete."""
    ranges = shard_ranges(manifest["count"], manifest["shard_size"])
    previous = -1
    for position, shard in enumerate(manifest["shards"]):
        start = shard.get("start") if isinstance(shard, dict) else None
        number = start // manifest["shard_size"] if isinstance(start, int) and not isinstance(start, bool) else -1
        if not previous < number < len(ranges):
            raise ValueError(f"{path}: shard entry {position} must record a shard of the corpus after the shard "
                             f"before it, got {short_repr(shard, 200)}")
        expected = _shard_entry(number, *ranges[number], "<hex>", "<hex>")
        if set(shard) != set(expected) or any(shard[key] != expected[key] for key in ("embeddings", "ids", "start", "stop")) \
                or not all(isinstance(shard[key], str) for key in ("embeddings_sha256", "ids_sha256")):
            raise ValueError(f"{path}: shard entry {position} must be {expected}, got {short_repr(shard, 200)}")
        previous = number
    if manifest["status"] == "complete" and len(manifest["shards"]) != len(ranges):
        raise ValueError(f"{path}: status 'complete', but {len(manifest['shards'])} of {len(ranges)} shards are recorded")


def shard_entry(number: int, start: int, stop: int, embeddings_bytes: bytes, ids_bytes: bytes) -> dict[str, Any]:
    """The manifest's record of a finished shard: its files, its rows and its files' SHA-256."""
    return _shard_entry(number, start, stop, hashlib.sha256(embeddings_bytes).hexdigest(),
                        hashlib.sha256(ids_bytes).hexdigest())


def _shard_entry(number: int, start: int, stop: int, embeddings_sha256: str, ids_sha256: str) -> dict[str, Any]:
    embeddings_name, ids_name = shard_file_names(number)
    return {"embeddings": embeddings_name, "ids": ids_name, "start": start, "stop": stop,
            "embeddings_sha256": embeddings_sha256, "ids_sha256": ids_sha256}


def check_shard_files(folder: Path, shard: dict[str, Any], checksums: bool = True) -> None:
    """Raise unless both files of a finished ``shard`` are in ``folder`` (with the SHA-256 the manifest
    records, when ``checksums``).

    Raises:
        FileNotFoundError: a file is missing (named).
        ValueError: a file changed since it was written (named).
    """
    for key in ("embeddings", "ids"):
        path = folder / shard[key]
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found, but {folder / MANIFEST_NAME} records it as finished "
                                    f"(rows {shard['start']}-{shard['stop'] - 1}): the folder was changed; "
                                    "encode the corpus again into a new folder")
        if checksums and file_sha256(path) != shard[f"{key}_sha256"]:
            raise ValueError(f"{path} is damaged: its SHA-256 is not the one {folder / MANIFEST_NAME} records "
                             f"(rows {shard['start']}-{shard['stop'] - 1}); encode the corpus again into a new folder")


def check_same_settings(folder: Path, manifest: dict[str, Any], settings: dict[str, Any], model: Any) -> None:
    """Raise unless this run's ``settings`` (and ``model``) are those ``folder``'s manifest was written with:
    resuming with other ones would mix rows of two encodings (module docstring).

    Raises:
        ValueError: naming ``manifest.json`` and the field that differs, with both values.
    """
    path = folder / MANIFEST_NAME
    advice = "run with the settings it was written with, or write to another folder"
    for key in COMPARED_SETTINGS:
        if manifest[key] != settings[key]:
            raise ValueError(f"{path} was written with {key} {manifest[key]!r}, but this run has {key} "
                             f"{settings[key]!r}; {advice}")
    recorded, current = manifest["corpus"], settings["corpus"]
    if (recorded["sha256"], recorded["size"], recorded["rows"]) != (current["sha256"], current["size"], current["rows"]):
        raise ValueError(f"{path} was written for another corpus ({recorded['file']}: {recorded['rows']} rows, "
                         f"{recorded['size']} bytes, SHA-256 {recorded['sha256'][:12]}...) than {current['file']} "
                         f"({current['rows']} rows, {current['size']} bytes, SHA-256 {current['sha256'][:12]}...); {advice}")
    cosine = probe_cosine(model, manifest["model_probe"], settings["truncate_dim"])
    if cosine < SAME_MODEL_MIN_COSINE:
        raise ValueError(f"{path} was written with another model ({manifest['model'] or 'unnamed'}): this run's model "
                         f"({settings['model'] or 'unnamed'}) embeds its probe sentences differently (cosine "
                         f"{cosine:.3f} < {SAME_MODEL_MIN_COSINE}); {advice}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_probe(probe: Any) -> bool:
    return isinstance(probe, dict) and isinstance(probe.get("texts"), list) and \
        isinstance(probe.get("embeddings"), list) and len(probe["texts"]) == len(probe["embeddings"]) > 0


def _is_corpus(corpus: Any) -> bool:
    return isinstance(corpus, dict) and isinstance(corpus.get("file"), str) and isinstance(corpus.get("sha256"), str) \
        and _is_positive_int(corpus.get("size")) and _is_positive_int(corpus.get("rows"))
