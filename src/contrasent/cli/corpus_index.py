"""What ``contrasent search`` and ``contrasent serve`` share: the arguments naming a model and a corpus
file, and the :class:`~contrasent.SemanticIndex` they give.

The corpus is read by :func:`contrasent.search.corpus.read_corpus` (``.jsonl``, e.g. BEIR's
``corpus.jsonl``, or one text per line). ``--index DIR`` caches the encoded corpus: loaded when ``DIR``
holds an index of this model and corpus, else built and saved there; a folder of shards written by
``contrasent encode`` (``manifest.json``) is searched in place (:meth:`~contrasent.SemanticIndex.from_shards`). Everything that can be checked
before the encoding is (minutes, for a large corpus): a corpus without documents, an ``--index`` that
is a file, a folder of other things, or cannot be written, and ``--backend faiss`` without faiss are
refused first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from contrasent.cli.arguments import positive_int
from contrasent.cli.prompt_arguments import add_prompt_arguments, prompt_options


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, ``--corpus`` and ``--index`` arguments and the index's settings."""
    parser.add_argument("model", help="model folder or Hugging Face Hub id")
    parser.add_argument("--corpus", required=True, type=Path,
                        help="corpus file: .jsonl (fields _id/id, title, text) or one text per line")
    parser.add_argument("--index", type=Path, default=None,
                        help="folder caching the encoded corpus (loaded if present, else written), or a "
                             "folder of shards written by contrasent encode (searched in place)")
    parser.add_argument("--text-field", default="text", help="text field of .jsonl records (default: text)")
    parser.add_argument("--title-field", default="title",
                        help="prepended to the text when present (default: title; '' to ignore)")
    parser.add_argument("--id-field", default=None, help="id field of .jsonl records (default: _id or id)")
    parser.add_argument("--backend", choices=["exact", "faiss"], default="exact")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="precision of the exact search's matrix products")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="texts per forward pass when encoding")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar of the encoding")
    add_prompt_arguments(parser)


def load_or_build_index(args: argparse.Namespace) -> Any:
    """The index of ``args.corpus`` under ``args.model``, from ``args.index`` when it holds that one.

    Raises:
        ValueError: the corpus holds no documents, or ``args.index`` holds an index of another model or
            another corpus.
        OSError: ``args.index`` is a file or a folder of other things (never replaced), or cannot be
            written: found before the model loads.
        ImportError: ``--backend faiss`` without faiss installed.
    """
    from contrasent.cli.model_loading import load_encoder
    from contrasent.search.corpus import read_corpus
    from contrasent.search.index import METADATA_NAME, SemanticIndex
    from contrasent.search.index_files import check_save_target
    from contrasent.search.shard_manifest import MANIFEST_NAME

    if args.backend == "faiss":
        from contrasent.search.faiss_backend import import_faiss

        import_faiss()  # not installed: found now, not after the encoding
    if args.index is not None and (args.index / MANIFEST_NAME).is_file():
        # a folder of shards written by `contrasent encode`: searched in place, block by block, nothing encoded
        # (the corpus file gives the results' texts and must be the one encoded)
        options = {"backend": args.backend, "batch_size": args.batch_size, **prompt_options(args)}
        return SemanticIndex.from_shards(args.index, load_encoder(args.model), corpus=args.corpus, **options)
    ids, texts = read_corpus(args.corpus, args.text_field, args.title_field or None, args.id_field)
    if not texts:
        raise ValueError(f"corpus file {args.corpus} holds no documents: there is nothing to search")
    cached = args.index is not None and (args.index / METADATA_NAME).is_file()
    if args.index is not None and not cached:
        check_save_target(args.index)
    model = load_encoder(args.model)
    options = {"backend": args.backend, "dtype": args.dtype, "batch_size": args.batch_size, **prompt_options(args)}
    if cached:
        index = SemanticIndex.load(args.index, model, **options)  # refuses another model, damaged files
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
