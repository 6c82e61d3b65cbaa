"""A folder of corpus shards (:func:`contrasent.search.corpus_shards.encode_corpus`) as the corpus of hard-negative
mining (:func:`contrasent.search.mining.mine_hard_negatives` with ``corpus_embeddings``): checked against the
mining's model and corpus, then read block by block from the memory-mapped shards.

Mining embeds the anchors and, without shards, the corpus with ``model.encode``'s defaults: the model's
default prompt and ``truncate_dim``. Shards written otherwise (another model, by the manifest's probe
sentences; another document prompt or ``truncate_dim``) hold rows of another space, and a corpus whose
texts are not the manifest's (another row count; for a file, another SHA-256) would put each row under
the wrong text; all are refused, naming the manifest (or the corpus file) and what differs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.models.prompts import resolve_prompt
from contrasent.search.index_checks import first_non_finite_row
from contrasent.search.model_probe import SAME_MODEL_MIN_COSINE, probe_cosine
from contrasent.search.shard_manifest import MANIFEST_NAME, file_sha256, read_manifest, shard_file_names
from contrasent.search.shard_reader import load_shards
from contrasent.search.text_checks import short_repr
from contrasent.search.topk import l2_normalize


class ShardBlocks:
    """The rows of a folder of shards, as :class:`contrasent.search.blockwise.CorpusBlocks`.

    Args:
        folder: the shards' folder (its manifest already checked by :func:`open_shards`).
        texts: the corpus's texts, one per row (to name a row whose values are not finite).
        keep: (count,) bool, the rows to search (False: a repeated text, searched at its first row).
        dim: the rows' dimension (the manifest's ``embedding_dim``).
        block_size: at most this many rows per block (a shard is split into blocks of this size; None:
            one block per shard). Memory: one block as float32.
    """

    def __init__(self, folder: Path, texts: list[str], keep: np.ndarray, dim: int, block_size: int | None = None) -> None:
        self.folder = folder
        self.dim = dim
        self.texts = texts
        self.keep = keep
        self.size = int(keep.sum())
        self.block_size = block_size

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(positions (n,) int64, rows (n, d) float32 L2-normalised)``, shard after shard, in corpus order."""
        start = 0
        for number, (_, embeddings) in enumerate(load_shards(self.folder)):
            step = self.block_size or max(1, len(embeddings))
            for begin in range(0, len(embeddings), step):
                stop = min(begin + step, len(embeddings))
                kept = np.flatnonzero(self.keep[start + begin:start + stop])
                rows = embeddings[begin:stop]
                rows = rows if len(kept) == len(rows) else rows[kept]
                positions = kept.astype(np.int64) + start + begin
                rows = np.asarray(rows, dtype=np.float32)
                bad = first_non_finite_row(rows)
                if bad is not None:
                    raise ValueError(f"{self.folder / shard_file_names(number)[0]} holds NaN or infinite values "
                                     f"in the row of corpus text {positions[bad]} "
                                     f"({short_repr(self.texts[positions[bad]])}); nothing can be mined against it")
                yield positions, l2_normalize(rows)
            start += len(embeddings)


def mining_document_settings(model: Any) -> tuple[str, int | None]:
    """``(prompt, truncate_dim)`` with which mining embeds texts: ``model.encode``'s defaults (the model's
    default prompt, ``""`` for none; its configured ``truncate_dim``)."""
    config = getattr(model, "config", None)
    prompt = resolve_prompt(getattr(config, "prompts", None) or {}, getattr(config, "default_prompt_name", None),
                            None, None)
    return prompt or "", getattr(config, "truncate_dim", None)


def check_shard_corpus(
    directory: str | os.PathLike, texts: list[str], corpus_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The manifest of ``directory``, once its encoding is complete and it was encoded from ``texts`` (their
    count; ``corpus_file``'s SHA-256 when given). No model needed: ``contrasent mine`` checks this before
    loading one.

    Raises:
        FileNotFoundError: no manifest; ValueError: an incomplete encoding, another row count or corpus file.
    """
    folder = Path(directory)
    manifest = read_manifest(folder)
    path = folder / MANIFEST_NAME
    load_shards(folder)  # refuses an incomplete encoding
    if manifest["count"] != len(texts):
        where = f"corpus file {corpus_file}" if corpus_file is not None else "the corpus"
        raise ValueError(f"{where} holds {len(texts)} texts, but {path} records {manifest['count']} rows (encoded "
                         f"from {manifest['corpus']['file']}): mine with the corpus the shards were encoded from")
    if corpus_file is not None:
        digest = file_sha256(Path(corpus_file))
        if digest != manifest["corpus"]["sha256"]:
            raise ValueError(f"corpus file {corpus_file} is not the file the shards in {folder} were encoded from: "
                             f"its SHA-256 is {digest[:12]}..., {path} records {manifest['corpus']['sha256'][:12]}... "
                             f"({manifest['corpus']['file']}); mine with that file, or encode this one")
    return manifest


def open_shards(
    directory: str | os.PathLike, model: Any, texts: list[str], keep: np.ndarray,
    corpus_file: str | os.PathLike | None = None, block_size: int | None = None,
) -> ShardBlocks:
    """The shards of ``directory`` as mining's corpus, once they are found to be ``model``'s embeddings of
    ``texts`` (module docstring).

    Args:
        directory: a folder written by ``contrasent encode`` / ``encode_corpus``, complete.
        model: the mining's model (a :class:`~contrasent.SentenceEncoder`: its probe embeddings are compared).
        texts: the corpus's texts, one per shard row (as :func:`contrasent.search.corpus.read_corpus` reads
            the file); ``keep``, ``block_size``: see :class:`ShardBlocks`.
        corpus_file: the file ``texts`` were read from: its SHA-256 must be the manifest's.

    Raises:
        FileNotFoundError: no manifest; ValueError: an incomplete encoding, or shards of another model,
            prompt, ``truncate_dim``, row count or corpus file (the manifest and the difference named).
    """
    manifest = check_shard_corpus(directory, texts, corpus_file)
    folder = Path(directory)
    path = folder / MANIFEST_NAME
    prompt, truncate_dim = mining_document_settings(model)
    for name, recorded, mining, flag in (
        ("prompt", manifest["prompt"], prompt, f"--document-prompt {prompt!r}"),
        ("truncate_dim", manifest["truncate_dim"], truncate_dim,
         "no --truncate-dim" if truncate_dim is None else f"--truncate-dim {truncate_dim}"),
    ):
        if recorded != mining:
            raise ValueError(f"{path} was written with the document {name} {recorded!r}, but mining embeds the "
                             f"anchors and documents with {name} {mining!r} (the model's default); encode the "
                             f"corpus again with {flag} (contrasent encode), or mine with a model set up as the "
                             "shards were written")
    dim = truncate_dim or getattr(model, "embedding_dim", None)
    if dim is not None and dim != manifest["embedding_dim"]:
        raise ValueError(f"{path} holds {manifest['embedding_dim']}-dimensional embeddings, but the mining's model "
                         f"gives {dim}-dimensional ones: the shards were written with another model; mine with that "
                         "model, or encode the corpus with this one")
    cosine = probe_cosine(model, manifest["model_probe"], truncate_dim)
    if cosine < SAME_MODEL_MIN_COSINE:
        raise ValueError(f"{path} was written with another model ({manifest['model'] or 'unnamed'}): the mining's "
                         f"model embeds its probe sentences differently (cosine {cosine:.3f} < "
                         f"{SAME_MODEL_MIN_COSINE}); mine with that model, or encode the corpus with this one")
    return ShardBlocks(folder, texts, keep, manifest["embedding_dim"], block_size)
