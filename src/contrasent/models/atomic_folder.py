"""Write a folder atomically, and replace only what is ours to replace.

Every save of contrasent (``SentenceEncoder.save_pretrained``, ``SemanticIndex.save``, the trainer's
checkpoints) writes through :func:`atomic_folder`: into a hidden sibling first, published in one atomic
step, so that a crash never leaves half a model where a whole one was.

What a save may replace (:func:`check_replaceable`, checked before any work and again just before
publishing). A save of a given :class:`FolderKind` writes to ``target`` only when ``target`` is

1. absent (it is created, with its missing parents);
2. an empty folder;
3. a folder holding the kind's ``marker`` file: a previous save of the same kind (``contrasent_config.json``
   for a model, ``index.json`` for a search index), which the new save is meant to replace;
4. any folder, when the caller passes ``exist_ok=True``: a folder it owns by contract (a trainer's
   ``output_dir``, where transformers puts checkpoints and logs).

A link is followed: the folder it points to is checked and replaced, the link stays. Everything else
is refused with a ``FileExistsError`` that names ``target`` and says what is there: a
file (or a link to one, a device, a pipe ...), or a non-empty folder of something else (a user's
documents, another library's model, a search index where a model is saved). Nothing has been written
then, and nothing is moved.

When a folder is replaced, the new save's entries take the place of the old ones of the same name; the
old folder's other entries are kept (moved into the new folder: a trainer's ``checkpoint-*`` folders, a
user's notes), except, in a previous save of the same kind, the entries matching the kind's
``artifacts``: files that save wrote and this one no longer does (a ``faiss.index`` of an index now
saved without one, a ``modules.json`` for a pooling sentence-transformers cannot read): kept, they would
describe another model or corpus than the one beside them. The published folder keeps the old folder's
permissions (a new one gets the usual ``0o777`` minus the umask), not the private mode of a
temporary folder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SHOWN_ENTRIES = 3


@dataclass(frozen=True)
class FolderKind:
    """What one kind of save writes: how to recognise an earlier save of the kind, and which entries are its own.

    Attributes:
        name: what the folder holds, for messages (``"model"``, ``"search index"``).
        marker: a file every save of this kind writes at the top of its folder.
        artifacts: glob patterns (``fnmatch``) of the top-level entries a save of this kind may write.
    """

    name: str
    marker: str
    artifacts: tuple[str, ...]

    def is_artifact(self, entry_name: str) -> bool:
        return any(fnmatch.fnmatchcase(entry_name, pattern) for pattern in self.artifacts)


def _as_path(target: str | os.PathLike) -> Path:
    if not isinstance(target, (str, os.PathLike)) or not str(target):
        raise TypeError(f"the folder to save to must be a non-empty path (str or os.PathLike), got {target!r}")
    return Path(os.path.expanduser(str(target)))


def check_replaceable(target: str | os.PathLike, kind: FolderKind, exist_ok: bool = False) -> Path:
    """Raise unless a save of ``kind`` may put its folder at ``target`` (the rule in the module docstring).

    Callers with long work before their save (encoding a corpus, training) call this first, so that a
    refusal costs nothing.

    Returns:
        ``target``, absolute, with links resolved.

    Raises:
        TypeError: ``target`` is not a path.
        FileExistsError: ``target`` is a file, or a non-empty folder that is not a previous save of
            ``kind`` (and ``exist_ok`` is false); the message names it and what it holds.
    """
    path = _as_path(target).resolve()
    if not path.exists():
        return path
    if not path.is_dir():
        what = "a file" if path.is_file() else "not a folder"
        raise FileExistsError(f"{path} is {what}; refusing to replace it with a {kind.name} folder: "
                              "choose another path, or move it away first")
    if exist_ok or (path / kind.marker).is_file():
        return path
    entries = sorted(entry.name for entry in path.iterdir())
    if entries:
        shown = ", ".join(entries[:_SHOWN_ENTRIES]) + (", ..." if len(entries) > _SHOWN_ENTRIES else "")
        raise FileExistsError(
            f"{path} is a folder of other files ({len(entries)} {'entry' if len(entries) == 1 else 'entries'}: "
            f"{shown}) and holds no {kind.marker}, "
            f"so it is not a {kind.name} saved by contrasent; refusing to write a {kind.name} into it: "
            "choose a new or empty folder"
        )
    return path


@contextmanager
def atomic_folder(target: str | os.PathLike, kind: FolderKind, *, exist_ok: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` to write into; on success it replaces ``target``.

    ``target`` must be replaceable by a save of ``kind`` (:func:`check_replaceable`, module docstring):
    checked on entry, before the block runs, and again before publishing. An exception (or a crash)
    inside the ``with`` block leaves ``target`` as it was. On success the new folder takes ``target``'s
    place in one atomic step (``renameat2(RENAME_EXCHANGE)`` on Linux; two renames elsewhere); entries
    of the old folder that the new one does not contain are moved into it, except a previous save's
    stale ``kind.artifacts``.
    """
    target = check_replaceable(target, kind, exist_ok)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    except OSError as error:  # name the folder asked for, not the hidden temporary one
        raise type(error)(error.errno, f"cannot create {target} ({error.strerror})", str(target.parent)) from None
    try:
        yield staging
        _fsync_tree(staging)
        check_replaceable(target, kind, exist_ok)  # the save may have taken hours: look again
        if target.exists():
            previous_save = (target / kind.marker).is_file()
            _exchange(staging, target)  # now `target` is the new folder, `staging` the old one
            for entry in staging.iterdir():
                stale = previous_save and kind.is_artifact(entry.name)
                if not stale and not (target / entry.name).exists():
                    os.rename(entry, target / entry.name)
            shutil.copymode(staging, target)
        else:
            os.chmod(staging, 0o777 & ~_umask())
            os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def _fsync_tree(folder: Path) -> None:
    """Flush every file to disk, so the rename never publishes a folder whose data is still in cache."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as file:
                os.fsync(file.fileno())


def _renameat2() -> Callable[..., int] | None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return getattr(libc, "renameat2", None)


def _exchange(a: Path, b: Path) -> None:
    """Swap two folders atomically where the OS can; else via a third name (a short non-atomic window)."""
    renameat2 = _renameat2()
    at_fdcwd, rename_exchange = -100, 2
    if renameat2 is not None and renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return
    parked = a.with_name(a.name + ".old")  # beside the staging folder's unique name: never a user's file
    os.rename(b, parked)
    os.rename(a, b)
    os.rename(parked, a)
