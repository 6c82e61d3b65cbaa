"""The ``contrasent`` command line: ``contrasent mine ...`` (more subcommands register the same way)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from contrasent.mining_cli import add_mine_parser


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="contrasent", description="Contrastive sentence embeddings.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_mine_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``contrasent`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
