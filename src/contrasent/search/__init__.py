"""Search over embedded corpora: the one exact top-k (:mod:`.topk`), corpus files (:mod:`.corpus`), the
:class:`SemanticIndex` (:mod:`.index`), a whole corpus encoded into resumable shards (:mod:`.corpus_shards`,
read by :mod:`.shard_reader`), offline hard-negative mining (:mod:`.mining`) and the HTTP service
(:mod:`.serve`, needs the ``serve`` extra)."""

from contrasent.search.corpus import join_title, read_corpus
from contrasent.search.corpus_shards import encode_corpus
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
from contrasent.search.shard_reader import load_shards

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
    "encode_corpus",
    "join_title",
    "load_shards",
    "read_corpus",
]
