"""Evaluation of sentence embeddings on STS (SentEval / SimCSE protocol) and retrieval (BEIR protocol).

The evaluators take any model with ``encode(list[str]) -> array``: a :class:`contrasent.SentenceEncoder`,
a ``sentence_transformers.SentenceTransformer``, or your own object.

>>> from contrasent.evaluation import STSSuite, RetrievalEvaluator, read_beir
>>> sts = STSSuite.from_data_dir("../shared/data")            # doctest: +SKIP
>>> sts(model)                                                # doctest: +SKIP
>>> RetrievalEvaluator(read_beir("../shared/data/beir_scifact"))(model)   # doctest: +SKIP
"""

from contrasent.data.files import DataFormatError
from contrasent.evaluation.encoding import encode_texts
from contrasent.evaluation.report import save_results
from contrasent.evaluation.retrieval import (
    DEFAULT_K_VALUES,
    RetrievalEvaluator,
    evaluate_run,
    format_retrieval_table,
    query_metrics,
)
from contrasent.evaluation.retrieval_data import Document, RetrievalData, read_beir, retrieval_from_datasets
from contrasent.evaluation.sts import (
    STS_TASKS,
    STSEvaluator,
    STSSuite,
    aggregate_subsets,
    correlations,
    format_sts_table,
    resolve_tasks,
)
from contrasent.evaluation.sts_data import (
    STSData,
    read_sick,
    read_sts_subset,
    read_sts_year,
    read_stsb,
    sts_from_dataset,
)

__all__ = [
    "DEFAULT_K_VALUES",
    "STS_TASKS",
    "DataFormatError",
    "Document",
    "RetrievalData",
    "RetrievalEvaluator",
    "STSData",
    "STSEvaluator",
    "STSSuite",
    "aggregate_subsets",
    "correlations",
    "encode_texts",
    "evaluate_run",
    "format_retrieval_table",
    "format_sts_table",
    "query_metrics",
    "read_beir",
    "read_sick",
    "read_sts_subset",
    "read_sts_year",
    "read_stsb",
    "resolve_tasks",
    "retrieval_from_datasets",
    "save_results",
    "sts_from_dataset",
]
