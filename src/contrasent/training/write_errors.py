"""A checkpoint or model that cannot be written ends in an error naming the folder and the reason.

What the writers raise says neither: torch's ``[enforce fail at inline_container.cc:672] . unexpected pos
8768 vs 8660`` when the disk fills while ``optimizer.pt`` is written, safetensors' ``Error while
serializing: I/O error: No space left on device (os error 28)`` for the weights. :func:`named_write_errors`
turns any failed write into an ``OSError`` that says which folder, and ``no space left on device`` (with
the space left) when the disk is full, the original error kept as its cause.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

# torch's zip writer reports a failed write by position or stream, never by errno
TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos")
NO_SPACE = ("No space left on device", "os error 28")
LOW_SPACE = 64 * 2**20  # less free space than this after a failed write: the disk filled up


class WriteError(OSError):
    """Writing a checkpoint or model folder failed; the message names the folder and the reason."""


@contextmanager
def named_write_errors(folder: str | Path) -> Iterator[None]:
    """Re-raise a failed write inside the block as a :class:`WriteError` naming ``folder``."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, RuntimeError, SafetensorError) as error:
        if not _is_write_failure(error):
            raise
        raise _explained(error, Path(folder)) from error


def _is_write_failure(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return True
    text = str(error)
    return any(marker in text for marker in TORCH_WRITE_FAILURES + NO_SPACE) or (
        isinstance(error, SafetensorError) and "I/O error" in text)


def _explained(error: BaseException, folder: Path) -> WriteError:
    free = _free_space(folder)
    no_space = (getattr(error, "errno", None) == errno.ENOSPC or any(marker in str(error) for marker in NO_SPACE)
                or (free is not None and free < LOW_SPACE))
    if no_space:
        left = f"; {free / 2**20:.1f} MiB left there" if free is not None else ""
        explained = WriteError(f"no space left on device while writing {folder}{left}: free some space "
                               "or write elsewhere (a half-written checkpoint is never resumed from)")
        explained.errno = errno.ENOSPC
        return explained
    return WriteError(f"writing {folder} failed: {type(error).__name__}: {error}")


def _free_space(folder: Path) -> int | None:
    """Free bytes on the file system holding ``folder`` (or its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None
