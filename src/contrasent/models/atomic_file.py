"""Write one file atomically: its readers see the old bytes or the new ones, never a part of them.

The bytes go to a hidden temporary file beside the target (same folder: same file system, so the rename
is atomic), are flushed to disk (``fsync``), and the temporary file is renamed over the target; the
folder is flushed too, so that the rename itself survives a power cut. A process killed at any point
leaves the target as it was, plus at most one temporary file that :func:`temporary_target` recognises,
which the next writer may delete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SUFFIX = ".partial"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace (or create) ``path`` with ``data``, atomically and durably (module docstring)."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_SUFFIX, dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # the usual mode of a new file, not mkstemp's private one
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are flushed by the file system
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def temporary_target(name: str) -> str | None:
    """The file a temporary file named ``name`` was being written for by :func:`write_atomically`, or ``None``
    when ``name`` is not such a temporary file."""
    if not (name.startswith(".") and name.endswith(_SUFFIX)):
        return None
    target, _, _random = name[1:-len(_SUFFIX)].rpartition(".")  # mkstemp's random part holds no dot
    return target or None
