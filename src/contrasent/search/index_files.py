"""The folder a :class:`~contrasent.SemanticIndex` is saved in: its files, the rule for where one may be
written, and reading one back only when its files agree with each other.

Files (no pickle anywhere):

- ``index.json``: the settings (the documents' prompt and ``truncate_dim`` among them), the model's
  name and probe embeddings, and (since version 2) the SHA-256 of ``corpus.jsonl``'s bytes, of the
  embedding matrix (float32, row-major) and of ``faiss.index`` when there is one;
- ``embeddings.npy``: (count, dim) float32 rows, row i the embedding of line i + 1 of
- ``corpus.jsonl``: one ``{"id": ..., "text": ...}`` per line;
- ``faiss.index``: faiss's own format, when a faiss index was built.

A quantized index (version 3, ``"quantization"`` in ``index.json``; :mod:`contrasent.search.quantization`)
has no ``embeddings.npy`` but ``ranges.npy`` ((2, dim) float32), ``int8.npy`` ((count, dim) int8) and,
for ``"binary"``, ``binary.npy`` ((count, ceil(dim/8)) uint8), each with its SHA-256 in ``index.json``.
Float indexes are still written as version 2, which older releases read.

Why checksums: the files are tied by position only. Rows in another order than the lines (a sorted or
deduplicated ``corpus.jsonl``, a replaced ``embeddings.npy``) load without a complaint and return the
wrong documents for every query. Reading refuses such a folder, naming the file that changed, as it
refuses NaN or infinite rows, rows that a cosine index cannot hold (not unit-length), duplicate ids,
and counts that disagree. Version 1 folders (saved before the checksums) still load: a few texts,
spread over the corpus, are embedded again and compared with their rows instead, with a warning to
save the index again.

Saving never replaces what is not an index (:func:`check_save_target`): a file, or a folder holding
other things and no ``index.json``, is refused before any work, as is a place that cannot be written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.data.files import DataFormatError
from contrasent.models.atomic_folder import FolderKind, check_replaceable
from contrasent.search.index_checks import (
    FieldRules,
    check_fields,
    check_ids,
    first_non_finite_row,
    first_non_unit_row,
    read_format_file,
)
from contrasent.search.model_probe import SAME_MODEL_MIN_COSINE
from contrasent.search.quantization import QUANTIZATIONS
from contrasent.search.text_checks import check_text, short_repr
from contrasent.search.topk import l2_normalize

INDEX_FORMAT = "contrasent-semantic-index"
# Version 2 is the float32 index; version 3 a quantized one (its rows are not in embeddings.npy), so that
# an older contrasent refuses it by its version instead of failing on a missing file.
INDEX_VERSION = 2
QUANTIZED_INDEX_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
METADATA_NAME = "index.json"
EMBEDDINGS_NAME = "embeddings.npy"
CORPUS_NAME = "corpus.jsonl"
FAISS_NAME = "faiss.index"
# a quantized index's arrays (contrasent.search.quantization.QuantizedCorpus.arrays): name -> file
QUANTIZED_NAMES = {"ranges": "ranges.npy", "int8": "int8.npy", "bits": "binary.npy"}
# What SemanticIndex.save writes and may replace (contrasent.models.atomic_folder): an earlier index, whose
# stale faiss.index (or quantized arrays) go with it.
INDEX_FOLDER = FolderKind("search index", METADATA_NAME,
                          (METADATA_NAME, EMBEDDINGS_NAME, CORPUS_NAME, FAISS_NAME, *QUANTIZED_NAMES.values()))
SIMILARITIES = ("cosine", "dot")
BACKENDS = ("exact", "faiss")
DTYPES = ("float32", "bfloat16")
# texts embedded again to check a version 1 folder, spread evenly over its corpus
_LEGACY_SAMPLES = 8


def check_save_target(directory: str | os.PathLike) -> None:
    """Raise, before any work, when saving an index to ``directory`` would replace something that is not
    an index (the one rule of :func:`contrasent.models.atomic_folder.check_replaceable`), or cannot succeed.

    Raises:
        FileExistsError: ``directory`` is a file, or a folder that holds other things and no ``index.json``:
            never replaced.
        NotADirectoryError: a parent of ``directory`` is a file.
        OSError: the folder it would be written in cannot be written (no permission, read-only).
    """
    if Path(directory).exists():
        check_replaceable(directory, INDEX_FOLDER)
    check_writable(directory, "the index")  # it is written beside its final place, then renamed


def check_writable(target: str | os.PathLike, what: str) -> None:
    """Raise unless ``target`` (a file or folder that may not exist yet) can be created: its nearest
    existing ancestor must be a folder that accepts a new file (tried, not guessed: root and read-only
    file systems defeat permission bits). ``what`` names the thing for the message.

    Raises:
        NotADirectoryError: an ancestor of ``target`` is a file.
        OSError: the folder it would be written in cannot be written.
    """
    target = Path(target)
    ancestor = target.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(f"cannot save {what} to {target}: {ancestor} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as error:
        raise OSError(f"cannot save {what} to {target}: {ancestor} cannot be written "
                      f"({error.strerror or error})") from None


def write_index(
    folder: Path, metadata: dict[str, Any], ids: Sequence[Any], texts: Sequence[str], arrays: dict[str, np.ndarray],
    write_faiss: Callable[[Path], None] | None = None,
) -> None:
    """Write the files of an index into ``folder``: the corpus, ``arrays`` (file name -> array: the
    embeddings, or a quantized index's arrays) as ``.npy`` files, the faiss index; ``index.json``
    (``metadata`` and every file's checksum) last. A ``quantization`` in ``metadata`` makes it version 3."""
    corpus_digest = hashlib.sha256()
    with open(folder / CORPUS_NAME, "wb") as file:
        for doc_id, text in zip(ids, texts):
            line = (json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n").encode("utf-8")
            corpus_digest.update(line)
            file.write(line)
    checksums = {CORPUS_NAME: corpus_digest.hexdigest()}
    for name, array in arrays.items():
        np.save(folder / name, array, allow_pickle=False)
        checksums[name] = _array_digest(array)
    if write_faiss is not None:
        write_faiss(folder / FAISS_NAME)
        checksums[FAISS_NAME] = file_digest(folder / FAISS_NAME)
    version = QUANTIZED_INDEX_VERSION if metadata.get("quantization") else INDEX_VERSION
    metadata = {**metadata, "format": INDEX_FORMAT, "version": version, "checksums": checksums}
    (folder / METADATA_NAME).write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")


def read_metadata(folder: Path) -> dict[str, Any]:
    """``index.json`` of ``folder``, every field the loader uses checked.

    Raises:
        FileNotFoundError: no ``index.json``.
        ValueError: not JSON, another format or version, or a field missing or of the wrong kind (named).
    """
    path = folder / METADATA_NAME
    metadata = read_format_file(path, INDEX_FORMAT, READABLE_VERSIONS,
                                f"{QUANTIZED_INDEX_VERSION}, {INDEX_VERSION} or 1", f"{folder} is not a saved SemanticIndex")
    rules: FieldRules = {
        "embedding_dim": ("a positive integer", lambda v: _is_int(v) and v > 0),
        "count": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
        "similarity": (f"one of {SIMILARITIES}", lambda v: v in SIMILARITIES),
        "backend": (f"one of {BACKENDS}", lambda v: v in BACKENDS),
        "dtype": (f"one of {DTYPES}", lambda v: v in DTYPES),
        "faiss_factory": ("a string", lambda v: isinstance(v, str)),
        "model": ("a string or null", lambda v: v is None or isinstance(v, str)),
        "model_probe": ('{"texts": [...], "embeddings": [[...], ...]}, one row per text',
                        lambda v: _is_probe(v, metadata.get("embedding_dim"))),
    }
    if metadata["version"] == 2:
        rules["checksums"] = (f"an object with the SHA-256 of {CORPUS_NAME} and {EMBEDDINGS_NAME}",
                              lambda v: isinstance(v, dict) and {CORPUS_NAME, EMBEDDINGS_NAME} <= set(v))
    if metadata["version"] >= 3:
        rules["quantization"] = (f"one of {QUANTIZATIONS}", lambda v: v in QUANTIZATIONS)
        rules["rescore_k"] = ("a positive integer or null", lambda v: v is None or (_is_int(v) and v > 0))
        rules["checksums"] = (f"an object with the SHA-256 of {CORPUS_NAME} and the quantized arrays",
                              lambda v: isinstance(v, dict) and CORPUS_NAME in v)
    check_fields(path, metadata, rules)
    # written since prompts and truncate_dim exist; absent from older indexes (no prompt, all dimensions)
    optional: FieldRules = {
        "truncate_dim": ("a positive integer or null", lambda v: v is None or (_is_int(v) and v > 0)),
        "document_prompt": ("a string or null", lambda v: v is None or isinstance(v, str)),
        "query_prompt": ("a string or null", lambda v: v is None or isinstance(v, str)),
    }
    for key, (expected, valid) in optional.items():
        if not valid(metadata.get(key)):
            raise ValueError(f"{path}: {key!r} must be {expected}, got {short_repr(metadata[key])}")
    return metadata


def read_rows(folder: Path, metadata: dict[str, Any], mmap: bool = False) -> tuple[list[Any], list[str], np.ndarray]:
    """``(ids, texts, embeddings)`` of the index in ``folder`` (its ``metadata`` read by
    :func:`read_metadata`), refused unless the files agree (see the module docstring); ``mmap``: the
    (count, dim) embeddings as a read-only memory map (checked by reading them once).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a malformed line or file, counts or shapes that disagree, a file that changed since
            it was saved (checksum), duplicate ids, non-finite rows, non-unit rows in a cosine index.
    """
    corpus_path, embeddings_path = folder / CORPUS_NAME, folder / EMBEDDINGS_NAME
    ids, texts, corpus_sha = _read_corpus(corpus_path)
    embeddings = _read_embeddings(embeddings_path, mmap_mode="r" if mmap else None)
    count, dim = metadata["count"], metadata["embedding_dim"]
    if embeddings.shape != (count, dim) or embeddings.dtype != np.float32 or len(ids) != count:
        raise ValueError(f"{folder}: {EMBEDDINGS_NAME} is {embeddings.dtype} {embeddings.shape} and "
                         f"{CORPUS_NAME} has {len(ids)} lines; {METADATA_NAME} says {count} float32 "
                         f"rows of dimension {dim}")
    if metadata["version"] >= 2:
        _check_checksum(corpus_path, corpus_sha, metadata)
        _check_checksum(embeddings_path, _array_digest(embeddings), metadata)
    check_ids(ids, (), str(corpus_path), lambda position: f"line {position + 1}")
    bad_row = first_non_finite_row(embeddings)
    if bad_row is not None:
        raise ValueError(f"{embeddings_path}: row {bad_row} (document {ids[bad_row]!r}) holds NaN or infinite "
                         "values: it would rank first or never for every query; rebuild the index")
    non_unit = first_non_unit_row(embeddings) if metadata["similarity"] == "cosine" else None
    if non_unit is not None:
        raise ValueError(f"{embeddings_path}: row {non_unit[0]} has norm {non_unit[1]:.4g}, but a cosine index "
                         f"stores unit rows: {METADATA_NAME} or the embeddings were changed; rebuild the index")
    return ids, texts, embeddings


def read_quantized_rows(
    folder: Path, metadata: dict[str, Any], memory_mapped: Sequence[str] = (),
) -> tuple[list[Any], list[str], dict[str, np.ndarray]]:
    """``(ids, texts, arrays)`` of a quantized index (version 3): ``arrays`` maps ``"ranges"`` (2, d)
    float32, ``"int8"`` (count, d) int8 and, for ``"binary"``, ``"bits"`` (count, ceil(d/8)) uint8 to
    their arrays; those named in ``memory_mapped`` stay on disk (``np.load(mmap_mode="r")``).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a file of another dtype or shape than ``index.json`` implies, one that changed since
            it was saved (checksum), ranges that are not finite or whose minimum exceeds the maximum,
            duplicate ids; each names the file.
    """
    corpus_path = folder / CORPUS_NAME
    ids, texts, corpus_sha = _read_corpus(corpus_path)
    count, dim = metadata["count"], metadata["embedding_dim"]
    if len(ids) != count:
        raise ValueError(f"{corpus_path} has {len(ids)} lines; {METADATA_NAME} says {count} documents")
    _check_checksum(corpus_path, corpus_sha, metadata)
    expected = {"ranges": (np.float32, (2, dim)), "int8": (np.int8, (count, dim))}
    if metadata["quantization"] == "binary":
        expected["bits"] = (np.uint8, (count, (dim + 7) // 8))
    # a file recorded but not read (bits under "int8") says the index.json was edited: which rows are meant?
    foreign = sorted(set(metadata["checksums"]) - {CORPUS_NAME, *(QUANTIZED_NAMES[key] for key in expected)})
    if foreign:
        raise ValueError(f"{folder / METADATA_NAME} records {', '.join(foreign)}, which a "
                         f"{metadata['quantization']} index does not store: it was edited; rebuild the index")
    arrays = {}
    for key, (dtype, shape) in expected.items():
        path = folder / QUANTIZED_NAMES[key]
        array = _read_embeddings(path, dtype, "r" if key in memory_mapped else None)
        if array.dtype != dtype or array.shape != shape:
            raise ValueError(f"{path} is {array.dtype} {array.shape}; the {metadata['quantization']} index of "
                             f"{METADATA_NAME} ({count} documents of dimension {dim}) stores "
                             f"{np.dtype(dtype)} {shape}: rebuild the index")
        _check_checksum(path, _array_digest(array), metadata)
        arrays[key] = array
    ranges_path = folder / QUANTIZED_NAMES["ranges"]
    if not np.isfinite(arrays["ranges"]).all() or (arrays["ranges"][0] > arrays["ranges"][1]).any():
        raise ValueError(f"{ranges_path}: the ranges must be finite, each minimum (row 0) at most its maximum "
                         "(row 1): rebuild the index")
    check_ids(ids, (), str(corpus_path), lambda position: f"line {position + 1}")
    return ids, texts, arrays


def check_faiss_file(folder: Path, metadata: dict[str, Any]) -> None:
    """Raise unless ``faiss.index`` is the one saved with this index (version 2 records its checksum)."""
    if metadata["version"] >= 2:
        _check_checksum(folder / FAISS_NAME, file_digest(folder / FAISS_NAME), metadata)


def check_rows_match_texts(model: Any, texts: list[str], embeddings: np.ndarray, folder: Path) -> None:
    """For a version 1 folder (no checksums): embed a few stored texts again and refuse the index when a
    row is not its text's embedding (rows and lines out of step); else warn that it should be saved again."""
    if texts:
        rows = np.unique(np.linspace(0, len(texts) - 1, min(_LEGACY_SAMPLES, len(texts))).round().astype(int))
        current = np.asarray(model.encode([texts[row] for row in rows], normalize=False), dtype=np.float32)
        cosines = (l2_normalize(current) * l2_normalize(embeddings[rows])).sum(axis=1)
        mismatched = np.flatnonzero(cosines < SAME_MODEL_MIN_COSINE)
        if len(mismatched):
            row = int(rows[mismatched[0]])
            raise ValueError(
                f"{folder}: row {row} of {EMBEDDINGS_NAME} is not the embedding of line {row + 1} of {CORPUS_NAME} "
                f"(cosine {cosines[mismatched[0]]:.3f}): the rows and the texts are out of step (a file was edited or "
                "reordered); this index has no checksums (saved by an older contrasent): rebuild it")
    warnings.warn(f"{folder} was saved by an older contrasent, without checksums tying its rows to its texts; "
                  "a sample of rows was checked; save it again to record them", UserWarning, stacklevel=3)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the index folder {path.parent} is incomplete")
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _array_digest(array: np.ndarray) -> str:
    """SHA-256 of an array's data (its bytes in C order; a memory-mapped array is read once, not kept)."""
    return hashlib.sha256(np.ascontiguousarray(array)).hexdigest()


def _check_checksum(path: Path, actual: str, metadata: dict[str, Any]) -> None:
    recorded = metadata["checksums"].get(path.name)
    if recorded is None:
        remedy = (f"delete it (a faiss index is rebuilt from {EMBEDDINGS_NAME})" if path.name == FAISS_NAME
                  else "rebuild the index")
        raise ValueError(f"{path.parent / METADATA_NAME} records no checksum of {path.name}: it was not saved "
                         f"with this index; {remedy}")
    if actual != recorded:
        raise ValueError(f"{path} has changed since the index was saved (its SHA-256 is not the one in "
                         f"{METADATA_NAME}): lines or rows edited, reordered, added or removed would return the "
                         "wrong documents; rebuild the index")


def _read_corpus(path: Path) -> tuple[list[Any], list[str], str]:
    """Ids, texts and the SHA-256 of ``corpus.jsonl``, read in one pass; a bad line is named."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the index folder {path.parent} is incomplete")
    digest = hashlib.sha256()
    ids: list[Any] = []
    texts: list[str] = []
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            digest.update(raw)
            where = f"{path}, line {number}"
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise DataFormatError(f"{where}: byte {raw[error.start:error.start + 1]!r} at column "
                                      f"{error.start + 1} is not valid UTF-8") from None
            except (ValueError, RecursionError) as error:
                raise DataFormatError(f"{where}: not valid JSON ({error})") from None
            if not isinstance(record, dict) or "id" not in record or "text" not in record:
                raise DataFormatError(f'{where}: expected an object {{"id": ..., "text": "..."}}, got {short_repr(record)}')
            ids.append(record["id"])
            texts.append(check_text(record["text"], f"{where}, field 'text'", blank_ok=True))
    return ids, texts, digest.hexdigest()


def _read_embeddings(path: Path, dtype: Any = np.float32, mmap_mode: str | None = None) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the index folder {path.parent} is incomplete")
    try:
        embeddings = np.load(path, allow_pickle=False, mmap_mode=mmap_mode)
    except (ValueError, EOFError) as error:  # truncated, pickled, or not a .npy file at all
        raise ValueError(f"{path}: not a complete {np.dtype(dtype)} .npy array ({error})") from None
    if not isinstance(embeddings, np.ndarray):
        # the file's content, not an argument's type: a ValueError like the others
        raise ValueError(f"{path}: expected one .npy array, got a {type(embeddings).__name__}")  # noqa: TRY004
    return embeddings


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_probe(probe: Any, dim: Any) -> bool:
    if not isinstance(probe, dict) or not isinstance(probe.get("texts"), list) or not probe["texts"]:
        return False
    try:
        embeddings = np.asarray(probe.get("embeddings"), dtype=np.float32)
    except (TypeError, ValueError):
        return False
    return all(isinstance(text, str) for text in probe["texts"]) and \
        embeddings.shape == (len(probe["texts"]), dim) and bool(np.isfinite(embeddings).all())
