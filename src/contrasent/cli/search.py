"""The ``contrasent search`` and ``contrasent serve`` subcommands (parsers and what they run).

Both build a :class:`~contrasent.SemanticIndex` from a corpus file (``.jsonl``, e.g. BEIR's
``corpus.jsonl``, or one text per line); ``--index DIR`` caches it: loaded when ``DIR`` holds an index
of this model and corpus, else built and saved there. Heavy modules are imported only when a
subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder or Hugging Face Hub id")
    parser.add_argument("--corpus", required=True, type=Path,
                        help="corpus file: .jsonl (fields _id/id, title, text) or one text per line")
    parser.add_argument("--index", type=Path, default=None,
                        help="folder caching the encoded corpus (loaded if present, else written)")
    parser.add_argument("--text-field", default="text", help="text field of .jsonl records (default: text)")
    parser.add_argument("--title-field", default="title",
                        help="prepended to the text when present (default: title; '' to ignore)")
    parser.add_argument("--id-field", default=None, help="id field of .jsonl records (default: _id or id)")
    parser.add_argument("--backend", choices=["exact", "faiss"], default="exact")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="precision of the exact search's matrix products")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass when encoding")


def add_search_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``contrasent search MODEL --corpus FILE QUERY...``."""
    parser = subparsers.add_parser("search", help="search a corpus with a sentence encoder",
                                   description="Print the documents of a corpus nearest to each query.")
    _add_index_arguments(parser)
    parser.add_argument("queries", nargs="+", metavar="QUERY")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object per query")
    parser.set_defaults(handler=run_search)
    return parser


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``contrasent serve MODEL --corpus FILE [--host 127.0.0.1] [--port 8000]``."""
    parser = subparsers.add_parser("serve", help="serve search over a corpus: HTTP API and a page",
                                   description="Serve POST /search, POST /encode, GET /health and a search "
                                               "page at / (needs the serve extra: fastapi, uvicorn).")
    _add_index_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-texts", type=int, default=64, help="texts or queries per request")
    parser.add_argument("--max-text-chars", type=int, default=10_000, help="characters per text")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body size")
    parser.add_argument("--max-top-k", type=int, default=100)
    parser.set_defaults(handler=run_serve)
    return parser


def load_or_build_index(args: argparse.Namespace) -> Any:
    """The index of ``args.corpus`` under ``args.model``, from ``args.index`` when it holds that one."""
    from contrasent.models.encoder import SentenceEncoder
    from contrasent.search.corpus import read_corpus
    from contrasent.search.index import METADATA_NAME, SemanticIndex

    ids, texts = read_corpus(args.corpus, args.text_field, args.title_field or None, args.id_field)
    model = SentenceEncoder.from_pretrained(args.model)
    options = {"backend": args.backend, "dtype": args.dtype, "batch_size": args.batch_size}
    if args.index is not None and (args.index / METADATA_NAME).is_file():
        index = SemanticIndex.load(args.index, model, **options)  # refuses another model
        index.model_name = str(args.model)
        if index.ids != ids or index.texts != texts:
            raise SystemExit(f"error: the index in {args.index} was built from another corpus than "
                             f"{args.corpus}; delete it or pass another --index")
        return index
    print(f"encoding {len(texts)} documents from {args.corpus} ...", file=sys.stderr)
    index = SemanticIndex.build(texts, model, ids=ids, model_name=str(args.model), **options)
    if args.index is not None:
        index.save(args.index)
        print(f"saved the index to {args.index}", file=sys.stderr)
    return index


def run_search(args: argparse.Namespace) -> None:
    index = load_or_build_index(args)
    for query, hits in zip(args.queries, index.search(args.queries, top_k=args.top_k)):
        if args.json:
            print(json.dumps({"query": query, "results": [hit._asdict() for hit in hits]}, ensure_ascii=False))
            continue
        print(f"query: {query}")
        for rank, hit in enumerate(hits, 1):
            text = hit.text if len(hit.text) <= 120 else hit.text[:117] + "..."
            print(f"{rank:3d}. {hit.score:.4f}  [{hit.id}] {text}")


def run_serve(args: argparse.Namespace) -> None:
    try:
        from contrasent.search.serve import Limits, serve
    except ImportError as error:
        raise SystemExit(f"error: contrasent serve needs fastapi and uvicorn: pip install 'contrasent[serve]' "
                         f"({error})") from error
    limits = Limits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                    max_text_chars=args.max_text_chars, max_top_k=args.max_top_k)
    serve(load_or_build_index(args), host=args.host, port=args.port, limits=limits)
