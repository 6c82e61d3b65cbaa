"""What ``contrasent search`` and ``contrasent serve`` share: the arguments naming a model and a corpus
file, and the :class:`~contrasent.SemanticIndex` they give.

The corpus is read by :func:`contrasent.search.corpus.read_corpus` (``.jsonl``, e.g. BEIR's
``corpus.jsonl``, or one text per line). ``--index DIR`` caches the encoded corpus: loaded when ``DIR``
holds an index of this model and corpus, else built and saved there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, ``--corpus`` and ``--index`` arguments and the index's settings."""
    parser.add_argument("model", help="model folder or Hugging Face Hub id")
    parser.add_argument("--corpus", required=True, type=Path,
                        help="corpus file: .jsonl (fields _id/id, title, text) or one text per line")
    parser.add_argument("--index", type=Path, default=None,
                        help="folder caching the encoded corpus (loaded if present, else written)")
    parser.add_argument("--text-field", default="text", help="text field of .jsonl records (default: text)")
    parser.add_argument("--title-field", default="title",
                        help="prepended to the text when present (default: title; '' to ignore)")
    parser.add_argument("--id-field", default=None, help="id field of .jsonl records (default: _id or id)")
    parser.add_argument("--backend", choices=["exact", "faiss"], default="exact")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="precision of the exact search's matrix products")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass when encoding")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar of the encoding")


def load_or_build_index(args: argparse.Namespace) -> Any:
    """The index of ``args.corpus`` under ``args.model``, from ``args.index`` when it holds that one.

    Raises:
        ValueError: ``args.index`` holds an index of another model or another corpus.
        FileExistsError: ``args.index`` is a file or a folder of other things (before any work).
    """
    from contrasent.models.atomic_folder import check_replaceable
    from contrasent.models.encoder import SentenceEncoder
    from contrasent.search.corpus import read_corpus
    from contrasent.search.index import INDEX_FOLDER, METADATA_NAME, SemanticIndex

    if args.index is not None:  # a file or a folder of other things: refused now, not after the encoding
        check_replaceable(args.index, INDEX_FOLDER)
    ids, texts = read_corpus(args.corpus, args.text_field, args.title_field or None, args.id_field)
    model = SentenceEncoder.from_pretrained(args.model)
    options = {"backend": args.backend, "dtype": args.dtype, "batch_size": args.batch_size}
    if args.index is not None and (args.index / METADATA_NAME).is_file():
        index = SemanticIndex.load(args.index, model, **options)  # refuses another model
        index.model_name = str(args.model)
        if index.ids != ids or index.texts != texts:
            raise ValueError(f"the index in {args.index} was built from another corpus than {args.corpus}; "
                             "delete it or pass another --index")
        return index
    print(f"encoding {len(texts)} documents from {args.corpus} ...", file=sys.stderr)
    index = SemanticIndex.build(texts, model, ids=ids, model_name=str(args.model),
                                show_progress_bar=not args.no_progress, **options)
    if args.index is not None:
        index.save(args.index)
        print(f"saved the index to {args.index}", file=sys.stderr)
    return index
