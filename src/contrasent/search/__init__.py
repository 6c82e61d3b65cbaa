"""Search over embedded corpora: the one exact top-k (:mod:`.topk`), corpus files (:mod:`.corpus`), the
:class:`SemanticIndex` (:mod:`.index`), offline hard-negative mining (:mod:`.mining`) and the HTTP
service (:mod:`.serve`, needs the ``serve`` extra)."""

from contrasent.search.corpus import join_title, read_corpus
from contrasent.search.index import (
    CORPUS_NAME,
    EMBEDDINGS_NAME,
    FAISS_NAME,
    INDEX_FORMAT,
    INDEX_VERSION,
    METADATA_NAME,
    SearchResult,
    SemanticIndex,
)
from contrasent.search.model_probe import PROBE_TEXTS

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
    "join_title",
    "read_corpus",
]
