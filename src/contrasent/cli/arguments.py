"""Types for the numeric arguments of the subcommands: a value that cannot be right is refused when the
command line is parsed, naming the flag (``contrasent search: error: argument --top-k: expected a
positive integer, got '0'``), not minutes later, after the model loaded and the corpus was encoded."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer ≥ 1 (``--top-k``, ``--batch-size``, ``--num-negatives`` ...)."""
    return _int(text, 1, None, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 (``--range``'s lower rank, ``--seed``)."""
    return _int(text, 0, None, "an integer >= 0")


def port(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    return _int(text, 0, 65535, "a port number from 0 to 65535")


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (``--margin``)."""
    value = _float(text, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1) (``--relative-margin``)."""
    value = _float(text, "a number from 0 (included) to 1 (excluded)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 (included) to 1 (excluded), got {text!r}")
    return value


def _int(text: str, low: int, high: int | None, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _float(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value
