"""``contrasent serve MODEL --corpus FILE [--host 127.0.0.1] [--port 8000]``: the HTTP search service of
:mod:`contrasent.search.serve` over a corpus (the corpus and ``--index`` arguments:
:mod:`contrasent.cli.corpus_index`). Needs the ``serve`` extra (fastapi, uvicorn)."""

from __future__ import annotations

import argparse

from contrasent.cli.arguments import port, positive_int
from contrasent.cli.corpus_index import add_index_arguments, load_or_build_index
from contrasent.cli.errors import CommandError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``contrasent serve`` and its arguments."""
    parser = subparsers.add_parser("serve", help="serve search over a corpus: HTTP API and a page",
                                   description="Serve POST /search, POST /encode, GET /health and a search "
                                               "page at / (needs the serve extra: fastapi, uvicorn).")
    add_index_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=port, default=8000)
    parser.add_argument("--max-texts", type=positive_int, default=64, help="texts or queries per request")
    parser.add_argument("--max-text-chars", type=positive_int, default=10_000, help="characters per text")
    parser.add_argument("--max-body-bytes", type=positive_int, default=1_000_000, help="request body size")
    parser.add_argument("--max-top-k", type=positive_int, default=100)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the address, build (or load) the index, then serve it until interrupted."""
    try:
        from contrasent.search.serve import Limits, serve
    except ImportError as error:
        raise CommandError(f"contrasent serve needs fastapi and uvicorn: pip install 'contrasent[serve]' "
                           f"({error})") from error
    _check_address(args.host, args.port)  # a port in use is found now, not after the corpus is encoded
    limits = Limits(max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                    max_text_chars=args.max_text_chars, max_top_k=args.max_top_k)
    serve(load_or_build_index(args), host=args.host, port=args.port, limits=limits)
    return 0


def _check_address(host: str, port: int) -> None:
    """Raise ``OSError`` naming ``host:port`` when the server could not bind there (in use, unknown host,
    an address of another machine); the socket is closed again at once, for uvicorn to bind."""
    import socket

    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, protocol) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind(address)
    except OSError as error:
        raise OSError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
