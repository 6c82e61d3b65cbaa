"""The ``contrasent`` command line.

One module per subcommand (:mod:`.evaluate`, :mod:`.mine`, :mod:`.search`, :mod:`.serve`), each with
``add_parser(subparsers)``, which declares the subcommand and its arguments and returns its parser, and
``run(args) -> int``, which does the work and returns the exit status. The modules import heavy libraries
(torch, transformers, datasets) inside ``run`` only, so ``contrasent --help`` stays fast. To add a
subcommand, write such a module and list it in :data:`SUBCOMMANDS`.

One error convention for every subcommand, each error printed on one line as
``contrasent <command>: error: <message>``, without a traceback:

- exit status 2: a user error, raised as :class:`CommandError`: the command line asks for something that
  cannot be done as asked (nothing to evaluate, an optional extra that is not installed);
- exit status 1: a bad file, model or value found while running, an ``OSError`` or ``ValueError`` (a
  missing or malformed corpus, a model folder that does not load, an index built from another corpus).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from contrasent.cli import evaluate, mine, search, serve
from contrasent.cli.errors import CommandError

__all__ = ["SUBCOMMANDS", "CommandError", "build_parser", "main"]

SUBCOMMANDS = (evaluate, mine, search, serve)


def build_parser() -> argparse.ArgumentParser:
    """The ``contrasent`` parser with every subcommand of :data:`SUBCOMMANDS`."""
    from contrasent import __version__

    parser = argparse.ArgumentParser(prog="contrasent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"contrasent {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(subparsers).set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``contrasent`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"contrasent {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:  # a file, model or value the user gave: one line, no traceback
        print(f"contrasent {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
