"""``contrasent mine DATA --model M --output OUT``: add mined hard negatives to a training file (see
:mod:`contrasent.search.mining`). The training file is read and written by :mod:`contrasent.data.files`,
the ``--corpus`` file by :func:`contrasent.search.corpus.read_corpus`, as ``contrasent search`` reads it."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--anchor-column", help="default: the first column")
    parser.add_argument("--positive-column", help="default: the second column")
    parser.add_argument("--num-negatives", type=int, default=3)
    parser.add_argument("--range", type=int, nargs=2, metavar=("MIN_RANK", "MAX_RANK"), default=(0, 100))
    parser.add_argument("--margin", type=float, help="keep negatives scoring <= positive - margin")
    parser.add_argument("--relative-margin", type=float,
                        help="keep negatives scoring <= positive * (1 - relative_margin)")
    parser.add_argument("--sampling", choices=("top", "random"), default="top")
    parser.add_argument("--output-format", choices=("n-tuple", "triplet"), default="n-tuple",
                        help="negative_1..k columns, or one (anchor, positive, negative) row per negative")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, help="truncate texts to this many tokens")
    parser.add_argument("--faiss", action="store_true", help="search with faiss (exact inner product)")
    parser.add_argument("--cache-dir", help="reuse / store embeddings (.npy) there")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the data and the corpus, mine (printing the statistics), save."""
    from contrasent.data.files import load_training_file, save_training_file
    from contrasent.models.encoder import SentenceEncoder
    from contrasent.search.corpus import read_corpus
    from contrasent.search.mining import mine_hard_negatives

    dataset = load_training_file(args.data)
    corpus = read_corpus(args.corpus)[1] if args.corpus else None
    overrides = {} if args.max_seq_length is None else {"max_seq_length": args.max_seq_length}
    model = SentenceEncoder.from_pretrained(args.model, **overrides)
    mined = mine_hard_negatives(
        dataset, model, corpus, anchor_column=args.anchor_column, positive_column=args.positive_column,
        num_negatives=args.num_negatives, range=tuple(args.range), margin=args.margin,
        relative_margin=args.relative_margin, sampling=args.sampling,
        output_format=args.output_format, batch_size=args.batch_size,
        use_faiss=args.faiss, cache_dir=args.cache_dir, model_id=f"{args.model}|{overrides}", seed=args.seed,
    )
    save_training_file(mined, args.output)
    print(f"Wrote {len(mined)} rows to {args.output}")
    return 0
