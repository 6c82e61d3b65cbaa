"""The ``contrasent`` command line: ``contrasent search ...``, ``contrasent serve ...``.

Each subcommand's parser and code live in their own module; heavy imports happen only when one runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from contrasent import __version__
from contrasent.cli_search import add_search_parser, add_serve_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contrasent", description="Sentence embeddings with contrastive learning.")
    parser.add_argument("--version", action="version", version=f"contrasent {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_search_parser(subparsers)
    add_serve_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run one subcommand; errors about files, models and arguments print one line and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (OSError, ValueError) as error:
        print(f"contrasent {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
