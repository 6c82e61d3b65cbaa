"""What a checkpoint must hold of a contrastive step besides the model, the optimizer and the RNG: the
negative queue's entries and the momentum encoder's weights.

Without them a run resumed from a checkpoint starts with an empty queue and a momentum encoder copied
from the current weights, and its losses leave those of the run that was never stopped. They are written
as safetensors files in the checkpoint folder, by the trainer's save and load hooks, and only when the
step has them: ``momentum_encoder.safetensors`` (by the main process; every process's copy is the same)
and ``negative_queue.safetensors`` (``negative_queue_<rank>.safetensors`` with several processes: each
keeps its own queue when embeddings are not gathered). The trainer writes them before
``trainer_state.json``, so a checkpoint that a killed run left without them is never resumed from
(:mod:`contrasent.training.checkpoints`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from contrasent.training.step import ContrastiveStep

logger = logging.getLogger(__name__)

MOMENTUM_FILE = "momentum_encoder.safetensors"
T = TypeVar("T")


def queue_file(process_index: int, world_size: int) -> str:
    """The queue's file name for one process (one file per process, named like transformers' RNG states)."""
    return "negative_queue.safetensors" if world_size <= 1 else f"negative_queue_{process_index}.safetensors"


def save_step_state(step: ContrastiveStep, folder: str | Path, process_index: int = 0, world_size: int = 1,
                    main_process: bool = True) -> None:
    """Write ``step``'s queue (every process) and momentum encoder (the main process) into ``folder``."""
    folder = Path(folder)
    if step.queue is not None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.contiguous() for name, tensor in step.queue.state_dict().items()}
        save_file(state, folder / queue_file(process_index, world_size), metadata={"size": str(step.queue.size)})
    if step.momentum_encoder is not None and main_process:
        folder.mkdir(parents=True, exist_ok=True)
        save_model(step.momentum_encoder.encoder, str(folder / MOMENTUM_FILE),
                   metadata={"momentum": str(step.momentum_encoder.momentum)})


def load_step_state(step: ContrastiveStep, folder: str | Path, process_index: int = 0, world_size: int = 1,
                    device: torch.device | str = "cpu") -> None:
    """Restore ``step``'s queue and momentum encoder from a checkpoint ``folder``.

    A checkpoint saved without them (by a run without ``--queue_size`` / ``--momentum``) leaves them as
    they start, with a warning naming the missing file. A file that does not match the step (another
    encoder, a damaged file) raises a ``ValueError`` naming it.
    """
    folder = Path(folder)
    if step.queue is not None:
        path = folder / queue_file(process_index, world_size)
        if path.is_file():
            step.queue.load_state_dict(_read(path, lambda: load_file(path, device=str(device))))
        else:
            logger.warning("%s is missing (the checkpoint was saved without --queue_size, or by another number of "
                           "processes): the negative queue starts empty", path)
    if step.momentum_encoder is not None:
        path = folder / MOMENTUM_FILE
        if path.is_file():
            _read(path, lambda: load_model(step.momentum_encoder.encoder, path, strict=True, device=str(device)))
        else:
            logger.warning("%s is missing (the checkpoint was saved without --momentum): the momentum encoder "
                           "starts from the resumed weights", path)


def _read(path: Path, read: Callable[[], T]) -> T:
    try:
        return read()
    except (OSError, RuntimeError, ValueError, SafetensorError) as error:  # RuntimeError: shapes that differ
        raise ValueError(f"{path}: cannot restore it into this run ({type(error).__name__}: {error})") from None
