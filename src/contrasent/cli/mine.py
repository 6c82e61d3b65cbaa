"""``contrasent mine DATA --model M --output OUT``: add mined hard negatives to a training file (see
:mod:`contrasent.search.mining`). The training file is read and written by :mod:`contrasent.data.files`,
the ``--corpus`` file by :func:`contrasent.search.corpus.read_corpus`, as ``contrasent search`` reads it;
with ``--corpus-embeddings DIR`` the corpus's embeddings are read from the shards ``contrasent encode``
wrote for that file (:mod:`contrasent.search.shard_mining`), block by block, instead of being encoded.

Everything that can be checked before the model loads and the texts are encoded is: the flags when
parsed, the rows (a ``null`` or blank anchor or positive), an empty corpus, shards that were not encoded
from the ``--corpus`` file (or not finished), ``--faiss`` without faiss,
a ``--cache-dir`` that cannot be written, and the ``--output`` (a folder where a file goes, a file or a
foreign folder where a ``save_to_disk`` folder goes, a place that cannot be written)."""

from __future__ import annotations

import argparse
from pathlib import Path

from contrasent.cli.arguments import fraction, non_negative_float, non_negative_int, positive_int
from contrasent.cli.errors import CommandError

# extensions save_training_file writes as files; any other output is a datasets.save_to_disk folder
_FILE_OUTPUTS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare ``contrasent mine`` and its arguments."""
    parser = subparsers.add_parser(
        "mine",
        help="mine hard negatives for an (anchor, positive) training file",
        description="Add negative_1..k columns of mined hard negatives to an (anchor, positive) dataset.",
    )
    parser.add_argument("data", help="training data: .jsonl/.json/.csv/.tsv/.parquet, or a save_to_disk folder")
    parser.add_argument("--model", required=True, help="encoder folder or Hub id (SentenceEncoder.from_pretrained)")
    parser.add_argument("--output", required=True,
                        help="output file (.jsonl/.json/.csv/.parquet) or folder (datasets.save_to_disk)")
    parser.add_argument("--corpus", help="texts to mine from: .txt (one per line) or .jsonl with 'text' "
                        "(and optional 'title'); default: the positives")
    parser.add_argument("--corpus-embeddings", metavar="DIR",
                        help="a folder of shards that 'contrasent encode' wrote for --corpus with --model: the "
                        "corpus is read from there, block by block, instead of being encoded")
    parser.add_argument("--anchor-column", help="default: the first column")
    parser.add_argument("--positive-column", help="default: the second column")
    parser.add_argument("--num-negatives", type=positive_int, default=3)
    parser.add_argument("--range", type=non_negative_int, nargs=2, metavar=("MIN_RANK", "MAX_RANK"), default=(0, 100))
    parser.add_argument("--margin", type=non_negative_float, help="keep negatives scoring <= positive - margin")
    parser.add_argument("--relative-margin", type=fraction,
                        help="keep negatives scoring <= positive * (1 - relative_margin)")
    parser.add_argument("--sampling", choices=("top", "random"), default="top")
    parser.add_argument("--output-format", choices=("n-tuple", "triplet"), default="n-tuple",
                        help="negative_1..k columns, or one (anchor, positive, negative) row per negative")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--max-seq-length", type=positive_int, help="truncate texts to this many tokens")
    parser.add_argument("--query-block-size", type=positive_int, default=4096,
                        help="anchors embedded and searched at a time (memory, not results; default: 4096)")
    parser.add_argument("--corpus-block-size", type=positive_int,
                        help="corpus rows searched at a time (default: the whole corpus in memory, or one shard)")
    parser.add_argument("--faiss", action="store_true", help="search with faiss (exact inner product)")
    parser.add_argument("--cache-dir", help="reuse / store embeddings (.npy) there")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the data, the corpus and the output, load the model, mine (printing the statistics), save."""
    from contrasent.cli.model_loading import load_encoder
    from contrasent.data.files import load_training_file, save_training_file
    from contrasent.search.corpus import read_corpus
    from contrasent.search.faiss_backend import import_faiss
    from contrasent.search.index_files import check_writable
    from contrasent.search.mining import check_mining_data, mine_hard_negatives
    from contrasent.search.shard_mining import check_shard_corpus

    if args.range[0] >= args.range[1]:
        raise CommandError(f"--range MIN_RANK MAX_RANK: expected MIN_RANK < MAX_RANK, got {args.range[0]} "
                           f"{args.range[1]}")
    _check_output(Path(args.output))
    if args.cache_dir is not None:
        check_writable(Path(args.cache_dir) / "embeddings.npy", "the embedding cache")
    if args.faiss:
        import_faiss()
    dataset = load_training_file(args.data)
    check_mining_data(dataset, args.anchor_column, args.positive_column, source=str(args.data))
    if args.corpus_embeddings is not None and args.corpus is None:
        raise CommandError("--corpus-embeddings needs --corpus, the file the shards were encoded from")
    corpus = read_corpus(args.corpus)[1] if args.corpus else None
    if corpus == []:
        raise ValueError(f"corpus file {args.corpus} holds no texts to mine from")
    if args.corpus_embeddings is not None:  # the shards' manifest against the corpus file, before the model loads
        check_shard_corpus(args.corpus_embeddings, corpus, args.corpus)
    overrides = {} if args.max_seq_length is None else {"max_seq_length": args.max_seq_length}
    model = load_encoder(args.model, **overrides)
    mined = mine_hard_negatives(
        dataset, model, corpus, corpus_embeddings=args.corpus_embeddings, anchor_column=args.anchor_column,
        positive_column=args.positive_column,
        num_negatives=args.num_negatives, range=tuple(args.range), margin=args.margin,
        relative_margin=args.relative_margin, sampling=args.sampling,
        output_format=args.output_format, batch_size=args.batch_size, query_block_size=args.query_block_size,
        corpus_block_size=args.corpus_block_size, use_faiss=args.faiss, cache_dir=args.cache_dir, model_id=f"{args.model}|{overrides}", seed=args.seed,
        source=str(args.data),
    )
    try:
        save_training_file(mined, args.output)
    except OSError as error:  # a full disk says neither which file nor what was being written
        raise OSError(error.errno, f"cannot write the mined rows to {args.output}: {error.strerror or error}") from error
    print(f"Wrote {len(mined)} rows to {args.output}")
    return 0


def _check_output(output: Path) -> None:
    """Refuse, before any work, an ``--output`` the mined rows could not be written to, or whose writing
    would mix them into (or replace) something else: a folder where a file goes, a file or a folder of
    other things where a ``save_to_disk`` folder goes. An existing file of the named format is replaced:
    that is what naming it asks for."""
    from contrasent.search.index_files import check_writable

    as_file = output.suffix.lower() in _FILE_OUTPUTS
    if as_file and output.is_dir():
        raise FileExistsError(f"--output {output} is a folder; a {output.suffix} output is a file: choose another path")
    if not as_file and output.exists():
        saved_dataset = (output / "state.json").is_file() and (output / "dataset_info.json").is_file()
        if not output.is_dir():
            raise FileExistsError(f"--output {output} is a file; without the extension of a file format "
                                  f"({', '.join(_FILE_OUTPUTS)}) the output is a save_to_disk folder: choose another path")
        if not saved_dataset and any(output.iterdir()):
            raise FileExistsError(f"--output {output} is a folder that holds other files: the save_to_disk folder "
                                  "would be mixed into them; choose another path, or an empty folder")
    check_writable(output, "the mined rows")
