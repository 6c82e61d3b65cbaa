"""The ``contrasent`` command line.

One module per subcommand (:mod:`.encode`, :mod:`.evaluate`, :mod:`.mine`, :mod:`.search`, :mod:`.serve`), each with
``add_parser(subparsers)``, which declares the subcommand and its arguments and returns its parser, and
``run(args) -> int``, which does the work and returns the exit status. The modules import heavy libraries
(torch, transformers, datasets) inside ``run`` only, so ``contrasent --help`` stays fast. To add a
subcommand, write such a module and list it in :data:`SUBCOMMANDS`.

One error convention for every subcommand, each error printed on one line as
``contrasent <command>: error: <message>``, without a traceback (``--debug`` shows it):

- exit status 2: a user error, raised as :class:`CommandError`: the command line asks for something that
  cannot be done as asked (nothing to evaluate, a blank query), an optional extra that is not installed
  (an ``ImportError``: faiss, fastapi), or argparse's refusal of an argument (every numeric flag is
  checked when parsed: :mod:`.arguments`);
- exit status 1: a bad file, model or value found while running, an ``OSError``, ``ValueError`` or
  ``TypeError`` (a missing or malformed corpus, a model folder that does not load
  (:mod:`.model_loading`), an index built from another corpus, a ``null`` text in a data file);
- exit status 130: interrupted (Ctrl-C), with one line saying so.

A message that spans lines (some libraries' do) is joined into one, so the reason is always the last
line printed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from contrasent.cli import encode, evaluate, mine, search, serve
from contrasent.cli.errors import CommandError

__all__ = ["SUBCOMMANDS", "CommandError", "build_parser", "main"]

SUBCOMMANDS = (encode, evaluate, mine, search, serve)


def build_parser() -> argparse.ArgumentParser:
    """The ``contrasent`` parser with every subcommand of :data:`SUBCOMMANDS`."""
    from contrasent import __version__

    parser = argparse.ArgumentParser(prog="contrasent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"contrasent {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        subparser = command.add_parser(subparsers)
        subparser.add_argument("--debug", action="store_true", help="show the traceback of an error")
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``contrasent`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\ncontrasent {args.command}: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ImportError) as error:
        return _report(args, error, 2)
    except (OSError, ValueError, TypeError) as error:  # a file, model or value the user gave
        return _report(args, error, 1)


def _report(args: argparse.Namespace, error: Exception, status: int) -> int:
    """Print ``error`` on one line (or raise it again under ``--debug``) and return ``status``."""
    if args.debug:
        raise error
    message = re.sub(r"\s*\n\s*", " ", str(error).strip()) or type(error).__name__
    print(f"contrasent {args.command}: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
