"""Stable text ids: fixed values (no per-process salt), equal for equal texts, distinct otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrasent.data.text_ids import text_id, text_id_array, text_ids

SRC = Path(__file__).resolve().parents[2] / "src"


def test_ids_are_fixed_blake2b_values():
    # int.from_bytes(blake2b(b"hello", digest_size=8).digest(), "little", signed=True)
    assert text_id("hello") == 9022087748821825191
    assert text_id("") != text_id(" ")
    ids = text_ids(["a", "b", "a", "ü"])
    assert ids.dtype == torch.int64 and ids.shape == (4,)
    assert ids[0] == ids[2] and len(set(ids.tolist())) == 3
    assert text_id_array(["a", "b"]).tolist() == ids[:2].tolist()


def test_ids_agree_across_processes_with_different_hash_seeds():
    code = "from contrasent.data.text_ids import text_id; print(text_id('hello world'))"
    values = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONPATH": str(SRC), "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert values == {str(text_id("hello world"))}


def test_non_string_is_refused():
    with pytest.raises(TypeError, match="text must be a str"):
        text_id(3)  # type: ignore[arg-type]
