"""The ``contrasent`` command line.

Each subcommand is one ``add_<name>_command(subparsers)`` function that declares its arguments and sets
``handler`` to the function that runs it; heavy libraries (torch, transformers) are imported inside the
handlers only, so ``contrasent --help`` stays fast. To add a subcommand, write such a function and list it
in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def add_evaluate_command(subparsers: argparse._SubParsersAction) -> None:
    """``contrasent evaluate MODEL --sts DATA_DIR --retrieval BEIR_DIR [--output results.json]``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on STS (SentEval/SimCSE protocol) and BEIR retrieval",
        description="Evaluate a sentence embedding model on the 7 STS tasks of the SimCSE paper and/or a "
        "BEIR retrieval data set, print the tables and optionally save the figures as JSON.",
    )
    parser.add_argument("model", help="path or Hub id of a model that SentenceEncoder.from_pretrained reads")
    parser.add_argument(
        "--sts",
        metavar="DATA_DIR",
        help="folder with stsbenchmark/, senteval_sts/ and sick/: runs STS12-16, STS-B test and SICK-R test",
    )
    parser.add_argument(
        "--sts-variant",
        choices=["senteval", "raw"],
        default="senteval",
        help="which copies of the STS files to read: SentEval's processed ones (default, as in the SimCSE "
        "paper) or the original releases",
    )
    parser.add_argument(
        "--retrieval", metavar="BEIR_DIR", help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)"
    )
    parser.add_argument("--split", default="test", help="qrels split of the BEIR folder (default: test)")
    parser.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=[1, 3, 5, 10, 100],
        help="retrieval cutoffs (default: 1 3 5 10 100)",
    )
    parser.add_argument("--query-prefix", default="", help='text put before each query, e.g. "query: "')
    parser.add_argument(
        "--document-prefix", default="", help='text put before each document, e.g. "passage: "'
    )
    parser.add_argument(
        "--keep-identical-ids",
        action="store_true",
        help="keep a document whose id equals the query id in the ranking (BEIR drops it by default)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="texts per encoding batch (default: 32)")
    parser.add_argument("--output", metavar="JSON", help="write the figures as JSON: task -> metric -> value")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Read the data first (so that bad input fails before the model loads), then evaluate and report."""
    from contrasent.evaluation import (
        DataFormatError,
        RetrievalEvaluator,
        STSSuite,
        format_retrieval_table,
        format_sts_table,
        read_beir,
        save_results,
    )

    if not args.sts and not args.retrieval:
        raise CommandError("nothing to evaluate: give --sts DATA_DIR and/or --retrieval BEIR_DIR")
    progress = not args.no_progress
    try:
        suite = (
            STSSuite.from_data_dir(
                args.sts, variant=args.sts_variant, batch_size=args.batch_size, show_progress_bar=progress
            )
            if args.sts
            else None
        )
        retrieval = (
            RetrievalEvaluator(
                read_beir(args.retrieval, split=args.split),
                k_values=args.k,
                ignore_identical_ids=not args.keep_identical_ids,
                query_prefix=args.query_prefix,
                document_prefix=args.document_prefix,
                batch_size=args.batch_size,
                show_progress_bar=progress,
            )
            if args.retrieval
            else None
        )
    except (FileNotFoundError, DataFormatError, ValueError) as error:
        raise CommandError(str(error)) from error

    from contrasent import SentenceEncoder

    model = SentenceEncoder.from_pretrained(args.model)
    results: dict[str, dict[str, float]] = {}
    if suite is not None:
        sts_results = suite(model)
        results.update(sts_results)
        print(f"\nSTS ({args.sts_variant} files), Spearman correlation ×100:\n")
        print(format_sts_table(sts_results))
    if retrieval is not None:
        metrics = retrieval(model)
        results[retrieval.name] = metrics
        data = retrieval.data
        print(
            f"\n{retrieval.name} ({data.split}: {len(data.queries)} queries, {len(data.corpus)} documents):\n"
        )
        print(format_retrieval_table(metrics))
    if args.output:
        save_results(results, args.output)
        print(f"\nsaved {args.output}")
    return 0


class CommandError(Exception):
    """A user error: printed as ``contrasent <command>: error: <message>``, exit status 2."""


def add_mine_command(subparsers: argparse._SubParsersAction) -> None:
    """``contrasent mine DATA --model M --output OUT ...``: offline hard-negative mining."""
    from contrasent.cli.mine import add_mine_parser

    add_mine_parser(subparsers)


def add_search_commands(subparsers: argparse._SubParsersAction) -> None:
    """``contrasent search MODEL --corpus FILE QUERY...`` and ``contrasent serve MODEL --corpus FILE``."""
    from contrasent.cli.search import add_search_parser, add_serve_parser

    add_search_parser(subparsers)
    add_serve_parser(subparsers)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_evaluate_command, add_mine_command, add_search_commands,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``contrasent`` parser with every subcommand of :data:`SUBCOMMANDS`."""
    from contrasent import __version__

    parser = argparse.ArgumentParser(prog="contrasent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"contrasent {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in SUBCOMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``contrasent`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except CommandError as error:
        print(f"contrasent {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:  # a file, model or argument the user gave: one line, no traceback
        print(f"contrasent {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
