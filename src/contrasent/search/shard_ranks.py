"""Which shards each process encodes when :func:`contrasent.search.corpus_shards.encode_corpus` runs under
``torch.distributed`` (``torchrun``), and the few collective steps that keep one writer of the manifest.

Rank 0 alone checks the output folder and writes ``manifest.json``; every rank encodes a contiguous part
of the missing shards and writes their files; after each round (one shard per rank) the ranks' manifest
entries are gathered to rank 0, which records them. Outside ``torch.distributed`` (or with one process)
every step here is the identity: one rank does everything.

A failure on rank 0 in a step that it does alone (a foreign manifest, a folder of other files) is sent to
every rank and raised there too, so that no rank waits for ever for a manifest that will not come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` unless a ``torch.distributed`` process group is initialized."""
    distributed = _distributed()
    if distributed is None:
        return 0, 1
    return distributed.get_rank(), distributed.get_world_size()


def contiguous_part(items: list[T], rank: int, world: int) -> list[T]:
    """Rank ``rank``'s part of ``items``: consecutive items, the parts' lengths differing by one at most."""
    return items[rank * len(items) // world:(rank + 1) * len(items) // world]


def on_rank_zero(step: Callable[[], T]) -> T:
    """Run ``step`` on rank 0 only and return its result on every rank (what it raised, raised on every rank)."""
    distributed = _distributed()
    if distributed is None:
        return step()
    outcome: list[Any] = [None]
    if distributed.get_rank() == 0:
        try:
            outcome[0] = (True, step())
        except Exception as error:  # noqa: BLE001 - sent to the other ranks, then raised on every rank below
            outcome[0] = (False, error)
    distributed.broadcast_object_list(outcome, src=0)
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value


def gather(value: T) -> list[T]:
    """Every rank's ``value``, in rank order (``[value]`` in one process)."""
    distributed = _distributed()
    if distributed is None:
        return [value]
    values: list[Any] = [None] * distributed.get_world_size()
    distributed.all_gather_object(values, value)
    return values


def _distributed() -> Any:
    """``torch.distributed`` when a process group of more than one process is initialized, else ``None``."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        return torch.distributed
    return None
