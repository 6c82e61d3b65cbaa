"""``contrasent evaluate MODEL --sts DATA_DIR --retrieval BEIR_DIR [--output results.json]``: STS
(SentEval / SimCSE protocol) and BEIR retrieval figures of a model (see :mod:`contrasent.evaluation`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contrasent.cli.arguments import positive_int
from contrasent.cli.errors import CommandError
from contrasent.cli.prompt_arguments import add_prompt_arguments, prompt_options


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``contrasent evaluate`` and its arguments."""
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
        "--tasks",
        nargs="+",
        metavar="TASK",
        help="run only these STS tasks: STS12 STS13 STS14 STS15 STS16 STS-B SICK-R (MTEB's names such as "
        "STSBenchmark are accepted); default: all seven",
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
        type=positive_int,
        nargs="+",
        default=[1, 3, 5, 10, 100],
        help="retrieval cutoffs (default: 1 3 5 10 100)",
    )
    parser.add_argument("--query-prefix", default="", help='text put before each query, e.g. "query: "')
    parser.add_argument(
        "--document-prefix", default="", help='text put before each document, e.g. "passage: "'
    )
    add_prompt_arguments(parser)
    parser.add_argument("--truncate-dim", type=positive_int, metavar="K",
                        help="keep the first K dimensions of each embedding (a Matryoshka model)")
    parser.add_argument(
        "--keep-identical-ids",
        action="store_true",
        help="keep a document whose id equals the query id in the ranking (BEIR drops it by default)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=32, help="texts per encoding batch (default: 32)")
    parser.add_argument("--output", metavar="JSON", help="write the figures as JSON: task -> metric -> value")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the output and read the data first (so that bad input fails before the model loads), then
    evaluate and report."""
    if not args.sts and not args.retrieval:
        raise CommandError("nothing to evaluate: give --sts DATA_DIR and/or --retrieval BEIR_DIR")
    if args.tasks and not args.sts:
        raise CommandError("--tasks selects STS tasks: give --sts DATA_DIR too")
    if args.output:
        _check_output(Path(args.output))
    suite, retrieval = _evaluators(args)

    from contrasent.cli.model_loading import load_encoder
    from contrasent.evaluation import format_retrieval_table, format_sts_table, save_results

    model = load_encoder(args.model, **({} if args.truncate_dim is None else {"truncate_dim": args.truncate_dim}))
    results: dict[str, dict[str, float]] = {}

    def task_done(name: str, metrics: dict[str, float]) -> None:
        """Print and save each task as it finishes: a long run shows progress and keeps what it measured."""
        results[name] = metrics
        print(f"{name}: Spearman {metrics['spearman']:.2f}", flush=True)
        if args.output:
            save_results(results, args.output)

    if suite is not None:
        sts_results = suite(model, on_task=task_done)
        results.update(sts_results)
        print(f"\nSTS ({args.sts_variant} files), Spearman correlation ×100:\n")
        print(format_sts_table(sts_results))
    if retrieval is not None:
        metrics = retrieval(model)
        results[retrieval.name] = metrics
        data = retrieval.data
        print(f"\n{retrieval.name} ({data.split}: {len(data.queries)} queries, {len(data.corpus)} documents):\n")
        print(format_retrieval_table(metrics))
    if args.output:
        save_results(results, args.output)
        print(f"\nsaved {args.output}")
    return 0


def _check_output(output: Path) -> None:
    """Refuse an ``--output`` that the results could not be written to, before the model loads: they are
    saved after each task, and a folder or an unwritable place would be found only then."""
    from contrasent.search.index_files import check_writable

    if output.is_dir():
        raise FileExistsError(f"--output {output} is a folder; the results are a JSON file: name one")
    check_writable(output, "the results")


def _evaluators(args: argparse.Namespace) -> tuple[Any, Any]:
    """The STS suite and the retrieval evaluator asked for (``None`` where not), their data read."""
    from contrasent.evaluation import RetrievalEvaluator, STSSuite, read_beir

    progress = not args.no_progress
    suite = retrieval = None
    if args.sts:
        suite = STSSuite.from_data_dir(
            args.sts, variant=args.sts_variant, tasks=args.tasks, batch_size=args.batch_size,
            show_progress_bar=progress,
        )
    if args.retrieval:
        retrieval = RetrievalEvaluator(
            read_beir(args.retrieval, split=args.split),
            k_values=args.k,
            ignore_identical_ids=not args.keep_identical_ids,
            query_prefix=args.query_prefix,
            document_prefix=args.document_prefix,
            batch_size=args.batch_size,
            **prompt_options(args),
            show_progress_bar=progress,
        )
    return suite, retrieval
