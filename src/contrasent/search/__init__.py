"""Search over embedded corpora: the one exact top-k (:mod:`.topk`), corpus files (:mod:`.corpus`), the
:class:`SemanticIndex` (:mod:`.index`), offline hard-negative mining (:mod:`.mining`) and the HTTP
service (:mod:`.serve`, needs the ``serve`` extra)."""

from contrasent.search.index import (
    CORPUS_NAME,
    EMBEDDINGS_NAME,
    FAISS_NAME,
    INDEX_FORMAT,
    INDEX_VERSION,
    METADATA_NAME,
    PROBE_TEXTS,
    SearchResult,
    SemanticIndex,
    read_corpus,
)

__all__ = [
    "CORPUS_NAME",
    "EMBEDDINGS_NAME",
    "FAISS_NAME",
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "METADATA_NAME",
    "PROBE_TEXTS",
    "SearchResult",
    "SemanticIndex",
    "read_corpus",
]
