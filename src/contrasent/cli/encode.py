"""``contrasent encode MODEL --corpus FILE --output DIR``: encode a whole corpus into shards of embeddings,
resumable: run the same command again after an interruption and it continues at the first missing shard
(:func:`contrasent.search.corpus_shards.encode_corpus`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contrasent.cli.arguments import positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``contrasent encode`` and its arguments."""
    parser = subparsers.add_parser(
        "encode", help="encode a corpus into resumable shards of embeddings",
        description="Encode every document of a corpus file into .npy shards with a manifest.json; run the same "
                    "command again to resume an interrupted encoding.")
    parser.add_argument("model", help="model folder or Hugging Face Hub id")
    parser.add_argument("--corpus", required=True, type=Path,
                        help="corpus file: .jsonl (fields _id/id, title, text) or one text per line")
    parser.add_argument("--output", required=True, type=Path,
                        help="folder of the shards: new, empty, or one this command wrote (resumed)")
    parser.add_argument("--shard-size", type=positive_int, default=10_000, help="corpus rows per shard (default: 10000)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="texts per forward pass (default: 64)")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                        help="stored precision of the embeddings (default: float32)")
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--document-prompt-name", metavar="NAME",
                        help="the model's prompt for each document (default: its 'document' prompt, if any)")
    prompt.add_argument("--document-prompt", metavar="TEXT",
                        help="a prompt put before each document, e.g. 'passage: ' ('' for none)")
    parser.add_argument("--truncate-dim", type=positive_int, default=None,
                        help="keep the first N dimensions of each embedding (a Matryoshka model)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Encode the corpus (or finish encoding it) and say where the shards are."""
    from contrasent.cli.model_loading import load_encoder
    from contrasent.search.corpus_shards import encode_corpus

    # the model is loaded last, once the corpus is read and the output folder checked: their errors come first
    manifest = encode_corpus(
        lambda: load_encoder(args.model), args.corpus, args.output, shard_size=args.shard_size,
        batch_size=args.batch_size, dtype=args.dtype,
        prompt_name=args.document_prompt_name, prompt=args.document_prompt, truncate_dim=args.truncate_dim,
        model_name=str(args.model), show_progress_bar=not args.no_progress,
    )
    print(f"encoded {manifest['count']} documents into {len(manifest['shards'])} shards in {args.output}",
          file=sys.stderr)
    return 0
