"""``contrasent serve MODEL --corpus FILE [--host 127.0.0.1] [--port 8000]``: the HTTP search service of
:mod:`contrasent.search.serve` over a corpus (the corpus and ``--index`` arguments:
:mod:`contrasent.cli.corpus_index`). Needs the ``serve`` extra (fastapi, uvicorn)."""

from __future__ import annotations

import argparse

from contrasent.cli.corpus_index import add_index_arguments, load_or_build_index
from contrasent.cli.errors import CommandError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``contrasent serve`` and its arguments."""
    parser = subparsers.add_parser("serve", help="serve search over a corpus: HTTP API and a page",
                                   description="Serve POST /search, POST /encode, GET /health and a search "
                                               "page at / (needs the serve extra: fastapi, uvicorn).")
    add_index_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-texts", type=int, default=64, help="texts or queries per request")
    parser.add_argument("--max-text-chars", type=int, default=10_000, help="characters per text")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body size")
    parser.add_argument("--max-top-k", type=int, default=100)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build (or load) the index, then serve it until interrupted."""
    try:
        from contrasent.search.serve import Limits, serve
    except ImportError as error:
        raise CommandError(f"contrasent serve needs fastapi and uvicorn: pip install 'contrasent[serve]' "
                           f"({error})") from error
    limits = Limits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                    max_text_chars=args.max_text_chars, max_top_k=args.max_top_k)
    serve(load_or_build_index(args), host=args.host, port=args.port, limits=limits)
    return 0
