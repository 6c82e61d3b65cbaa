"""Which checkpoints can be resumed from.

``transformers.Trainer`` writes a checkpoint folder piece by piece: the model, the optimizer and
scheduler, the RNG states, and ``trainer_state.json`` last. A run killed while it writes leaves a folder
without (or with a truncated) ``trainer_state.json``; ``transformers.trainer_utils.get_last_checkpoint``
would still pick it. :func:`last_complete_checkpoint` skips such folders, so a resumed run never starts
from a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
REQUIRED_FILES = ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt")


def is_complete_checkpoint(folder: str | os.PathLike) -> bool:
    """Every file a resume needs is there and ``trainer_state.json`` (written last) parses."""
    folder = Path(folder)
    if not all((folder / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete ``checkpoint-N`` folder of ``output_dir`` with the largest N, or ``None``."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    steps = [(int(match.group(1)), path) for path in output_dir.iterdir()
             if path.is_dir() and (match := _CHECKPOINT.match(path.name))]
    for _step, path in sorted(steps, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None
