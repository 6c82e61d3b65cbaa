"""Retrieval benchmarks in BEIR's shape (:class:`RetrievalData`): BEIR folders, or ``datasets`` objects
in the BEIR/MTEB layout.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (header, then ``query-id corpus-id score``). Every reader raises
:class:`~contrasent.data.files.DataFormatError` naming the file and line (or data set and row) and what
was expected; JSON lines are parsed by :func:`contrasent.data.files.read_jsonl`, and a document is
embedded as :func:`contrasent.search.corpus.join_title` joins it, ``(title + " " + text).strip()``: the
same text ``contrasent search`` and ``contrasent mine`` embed from the same ``corpus.jsonl``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrasent.data.files import DataFormatError, numbered_lines, read_jsonl
from contrasent.search.corpus import join_title

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    """A corpus entry of a BEIR data set."""

    title: str
    text: str

    def joined(self) -> str:
        """Title and text as BEIR encodes them: ``(title + " " + text).strip()``
        (:func:`contrasent.search.corpus.join_title`, the rule of every corpus reader)."""
        return join_title(self.title, self.text)


@dataclass(frozen=True)
class RetrievalData:
    """A retrieval benchmark in BEIR's shape.

    Attributes:
        name: the data set name (the folder name for BEIR folders, e.g. ``"scifact"``).
        corpus: document id -> :class:`Document`.
        queries: query id -> query text, only the queries judged in ``qrels`` (as BEIR loads them).
        qrels: query id -> {document id: graded relevance}; relevance <= 0 counts as not relevant.
        split: the qrels split the data was read from (``"test"`` ...), or ``None``.
    """

    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str | None = None
    notes: list[str] = field(default_factory=list)


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, record in read_jsonl(path):
        yield f"{path}, line {number}", record


def _read_qrels(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in numbered_lines(path):
        where = f"{path}, line {number}"
        line = line.removesuffix("\n").removesuffix("\r")
        fields = line.split("\t")
        if number == 1 and len(fields) >= 3 and not fields[2].strip().lstrip("-").isdigit():
            continue  # the header line ("query-id corpus-id score")
        if not line.strip():
            continue
        if len(fields) != 3:
            raise DataFormatError(
                f"{where}: expected 3 TAB-separated fields (query-id, corpus-id, score), got {len(fields)}"
            )
        yield where, {"query-id": fields[0], "corpus-id": fields[1], "score": fields[2]}


def _field(record: Mapping[str, Any], names: tuple[str, ...], where: str, required: bool = True) -> str:
    for name in names:
        if name in record and record[name] is not None:
            return str(record[name])
    if required:
        raise DataFormatError(f"{where}: missing field {names[0]!r} (got fields {sorted(record)})")
    return ""


def _by_id(
    rows: Iterable[tuple[str, Mapping[str, Any]]], what: str, id_fields: tuple[str, ...]
) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Rows keyed by their id (with their location); a repeated id is an error naming both places."""
    records: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for where, row in rows:
        record_id = _field(row, id_fields, where)
        if record_id in records:
            raise DataFormatError(
                f"{where}: duplicate {what} id {record_id!r} (first at {records[record_id][0]})"
            )
        records[record_id] = (where, row)
    return records


def build_retrieval_data(
    name: str,
    corpus_rows: Iterable[tuple[str, Mapping[str, Any]]],
    query_rows: Iterable[tuple[str, Mapping[str, Any]]],
    qrel_rows: Iterable[tuple[str, Mapping[str, Any]]],
    split: str | None = None,
    allow_missing_documents: bool = False,
) -> RetrievalData:
    """Validate BEIR-shaped rows (each with a location string for error messages) into :class:`RetrievalData`.

    Checks: unique ids, non-empty query texts, integer relevance scores, one score per (query, document),
    and that every judged query and document exists. A judged document missing from the corpus is an error
    unless ``allow_missing_documents`` (then it is kept, counting against recall as in BEIR, with a
    warning). Empty documents are kept (BEIR encodes them as empty strings) with a counted warning.
    """
    corpus = {
        doc_id: Document(_field(row, ("title",), where, False), _field(row, ("text",), where))
        for doc_id, (where, row) in _by_id(corpus_rows, "document", ("_id", "id", "corpus-id")).items()
    }
    if not corpus:
        raise DataFormatError(f"{name}: the corpus is empty")
    all_queries = {
        query_id: _field(row, ("text",), where)
        for query_id, (where, row) in _by_id(query_rows, "query", ("_id", "id", "query-id")).items()
    }
    qrels, missing_documents = _judgments(qrel_rows, all_queries, corpus, allow_missing_documents)
    if not qrels:
        raise DataFormatError(f"{name}: no relevance judgments")
    queries = {}
    for query_id in qrels:
        if not all_queries[query_id].strip():
            raise DataFormatError(f"{name}: query {query_id!r} has an empty text")
        queries[query_id] = all_queries[query_id]

    notes = []
    if missing_documents:
        notes.append(f"{len(missing_documents)} judgments name documents absent from the corpus")
    empty = sum(1 for doc in corpus.values() if not doc.joined())
    if empty:
        notes.append(f"{empty} documents have an empty title and text")
    for note in notes:
        logger.warning("%s: %s", name, note)
    return RetrievalData(name, corpus, queries, qrels, split, notes)


def _judgments(
    qrel_rows: Iterable[tuple[str, Mapping[str, Any]]],
    queries: Mapping[str, str],
    corpus: Mapping[str, Document],
    allow_missing_documents: bool,
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """``qrels`` (query id -> {document id: relevance}) and the judged document ids absent from the corpus."""
    qrels: dict[str, dict[str, int]] = {}
    missing_documents: list[str] = []
    for where, row in qrel_rows:
        query_id = _field(row, ("query-id", "query_id", "qid"), where)
        doc_id = _field(row, ("corpus-id", "corpus_id", "doc_id", "docid"), where)
        raw_score = _field(row, ("score", "relevance", "label"), where).strip()
        try:
            score = int(raw_score)
        except ValueError:
            raise DataFormatError(f"{where}: expected an integer relevance score, got {raw_score!r}") from None
        if query_id not in queries:
            raise DataFormatError(f"{where}: query id {query_id!r} is not in the queries")
        if doc_id not in corpus:
            if not allow_missing_documents:
                raise DataFormatError(
                    f"{where}: document id {doc_id!r} is not in the corpus "
                    "(pass allow_missing_documents=True to keep such judgments, as BEIR does)"
                )
            missing_documents.append(doc_id)
        judged = qrels.setdefault(query_id, {})
        if judged.get(doc_id, score) != score:
            raise DataFormatError(
                f"{where}: conflicting relevance for query {query_id!r}, document {doc_id!r}: "
                f"{judged[doc_id]} and {score}"
            )
        judged[doc_id] = score
    return qrels, missing_documents


def read_beir(
    folder: str | Path, split: str = "test", allow_missing_documents: bool = False
) -> RetrievalData:
    """Read a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Only queries judged in the split are kept, as BEIR's ``GenericDataLoader`` does. See
    :func:`build_retrieval_data` for the checks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: BEIR folder not found")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise FileNotFoundError(f"{qrels_path}: no qrels for split {split!r}; available splits: {available}")
    for required in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / required).is_file():
            raise FileNotFoundError(f"{folder / required}: file not found (a BEIR folder needs it)")
    return build_retrieval_data(
        folder.name,
        _read_jsonl(folder / "corpus.jsonl"),
        _read_jsonl(folder / "queries.jsonl"),
        _read_qrels(qrels_path),
        split=split,
        allow_missing_documents=allow_missing_documents,
    )


def retrieval_from_datasets(
    corpus: Any, queries: Any, qrels: Any, name: str = "dataset", allow_missing_documents: bool = False
) -> RetrievalData:
    """Build :class:`RetrievalData` from ``datasets`` objects in BEIR/MTEB layout.

    ``corpus`` has ``_id`` (or ``id``), ``title`` (optional) and ``text``; ``queries`` has ``_id`` and
    ``text``; ``qrels`` has ``query-id``, ``corpus-id`` and ``score`` (e.g. the ``corpus``, ``queries``
    and ``default`` configs of ``mteb/scifact``).
    """

    def rows(data: Any, what: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for index, row in enumerate(data):
            yield f"{name} {what}, row {index}", row

    return build_retrieval_data(
        name,
        rows(corpus, "corpus"),
        rows(queries, "queries"),
        rows(qrels, "qrels"),
        allow_missing_documents=allow_missing_documents,
    )
