"""Printing and saving evaluation results."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; the first column is left-aligned text, the others right-aligned figures."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def save_results(results: Mapping[str, Mapping[str, float]], path: str | Path) -> None:
    """Write ``task -> {metric: value}`` as indented JSON (e.g. ``results["STS12"]["spearman"]``).

    Atomically (a sibling temporary file renamed over ``path``): results written task by task are never
    left half-written by a stopped run. A failure (a full disk) leaves no temporary file and names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:  # a full disk says neither which file nor what was being written
        partial.unlink(missing_ok=True)
        raise OSError(error.errno, f"cannot write the results to {path}: {error.strerror or error}") from error
