"""The prompt flags that ``evaluate`` and ``search`` share: which prompt queries and documents get.

``--query-prompt-name`` / ``--document-prompt-name`` name one of the model's prompts; ``--query-prompt``
/ ``--document-prompt`` give the string itself (``''`` for none). Without them, queries get the model's
``"query"`` prompt and documents its ``"document"`` (or ``"passage"``, ``"corpus"``) prompt when it has
them, as sentence-transformers' ``encode_query`` / ``encode_document`` do
(:func:`contrasent.models.prompts.role_prompt`).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the four prompt flags; a name and a string for the same role are refused when parsed."""
    for role, example in (("query", "query: "), ("document", "passage: ")):
        group = parser.add_mutually_exclusive_group()
        group.add_argument(f"--{role}-prompt-name", metavar="NAME",
                           help=f"the model's prompt for each {role} (default: its {role!r} prompt, if any)")
        group.add_argument(f"--{role}-prompt", metavar="TEXT",
                           help=f"a prompt put before each {role}, e.g. {example!r} ('' for none)")


def prompt_options(args: argparse.Namespace) -> dict[str, Any]:
    """The prompt keyword arguments of ``RetrievalEvaluator`` and ``SemanticIndex`` the flags give."""
    names = ("query_prompt_name", "query_prompt", "document_prompt_name", "document_prompt")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
