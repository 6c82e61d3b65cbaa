"""``contrasent search MODEL --corpus FILE QUERY...``: print the documents of a corpus nearest to each
query (the corpus and ``--index`` arguments: :mod:`contrasent.cli.corpus_index`)."""

from __future__ import annotations

import argparse
import json

from contrasent.cli.arguments import positive_int
from contrasent.cli.corpus_index import add_index_arguments, load_or_build_index
from contrasent.cli.errors import CommandError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``contrasent search`` and its arguments."""
    parser = subparsers.add_parser("search", help="search a corpus with a sentence encoder",
                                   description="Print the documents of a corpus nearest to each query.")
    add_index_arguments(parser)
    parser.add_argument("queries", nargs="+", metavar="QUERY")
    parser.add_argument("--top-k", type=positive_int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object per query")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print each query's hits: ranked lines, or one JSON object per query with ``--json``. The queries
    are checked first: a blank one (or one that is not valid text) is refused before any work."""
    from contrasent.search.text_checks import check_text

    for number, query in enumerate(args.queries, 1):
        try:
            check_text(query, f"query {number}")
        except ValueError as error:
            raise CommandError(str(error)) from None
    index = load_or_build_index(args)
    for query, hits in zip(args.queries, index.search(args.queries, top_k=args.top_k)):
        if args.json:
            print(json.dumps({"query": query, "results": [hit._asdict() for hit in hits]}, ensure_ascii=False))
            continue
        print(f"query: {query}")
        for rank, hit in enumerate(hits, 1):
            text = hit.text if len(hit.text) <= 120 else hit.text[:117] + "..."
            print(f"{rank:3d}. {hit.score:.4f}  [{hit.id}] {text}")
    return 0
