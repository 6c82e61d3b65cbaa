"""Batch samplers for contrastive training: batches without duplicate texts, batches grouped by label.

Both samplers build **global** batches of ``batch_size × num_replicas`` rows (the batch every anchor sees
once embeddings are gathered across devices) and yield each as ``num_replicas`` consecutive per-device
batches of ``batch_size``. accelerate's ``BatchSamplerShard`` (used by ``transformers.Trainer`` under
``accelerate launch`` / ``torchrun``) hands batch ``i`` to rank ``i % num_replicas``, so at every step
the ranks hold the slices of one global batch. Every rank builds the same plan from the same data,
``seed`` and epoch, so every rank gets the same number of batches (no DDP hang), and every per-device
batch has exactly ``batch_size`` rows, except, with one replica and ``drop_last=False``, the last ones.

Packing (both samplers): items (rows, or groups of rows of one label) are taken in a seeded random
order that changes with :meth:`set_epoch`. An item that clashes with the batch being built (shares a
text, or a label) waits and is offered first to the next batches, oldest clash first; it is carried,
never dropped. When the order is exhausted the waiting items form the last, incomplete batches. Then:

- ``drop_last=True``: the incomplete global batches are dropped (their row count is in
  :attr:`dropped_rows`; a warning is given when more than one batch is dropped).
- ``drop_last=False``, one replica: they are yielded as they are (smaller batches).
- ``drop_last=False``, several replicas: each is topped up to full size with items from the start of
  this epoch's order that do not clash (those rows are seen twice this epoch, as with
  ``DistributedSampler``'s padding), so that every rank gets a full slice; a batch that cannot be
  topped up (a tiny dataset) is dropped with a warning.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from contrasent.data.text_ids import text_id

Keys = tuple[int, ...]


def _pack(order: Sequence[int], keys: Sequence[Keys], capacity: int) -> tuple[list[list[int]], list[list[int]]]:
    """Pack ``order``'s items into batches of ``capacity`` items sharing no key.

    Returns ``(full, incomplete)`` batches of item indices. Clashing items wait in queues indexed by the
    key they clashed on; at most one item per key fits a batch, so each new batch offers the head of
    every queue first (O(#queues) per batch, not O(#waiting)).
    """
    waiting: dict[int, deque[int]] = {}
    full: list[list[int]] = []
    batch: list[int] = []
    used: set[int] = set()

    def offer_waiting() -> None:
        for key in list(waiting):
            if len(batch) == capacity:
                return
            queue = waiting[key]
            if used.isdisjoint(keys[queue[0]]):
                item = queue.popleft()
                batch.append(item)
                used.update(keys[item])
                if not queue:
                    del waiting[key]

    position = 0
    while position < len(order):
        offer_waiting()
        while len(batch) < capacity and position < len(order):
            item = order[position]
            position += 1
            clash = next((key for key in keys[item] if key in used), None)
            if clash is None:
                batch.append(item)
                used.update(keys[item])
            else:
                waiting.setdefault(clash, deque()).append(item)
        if len(batch) == capacity:
            full.append(batch)
            batch, used = [], set()
    incomplete: list[list[int]] = []
    while waiting or batch:
        offer_waiting()  # an empty batch always takes the first queue's head, so this ends
        (full if len(batch) == capacity else incomplete).append(batch)
        batch, used = [], set()
    return full, incomplete


def _top_up(batch: list[int], order: Sequence[int], keys: Sequence[Keys], capacity: int) -> bool:
    """Fill ``batch`` to ``capacity`` with non-clashing items from the start of ``order``; success?"""
    used = {key for item in batch for key in keys[item]}
    members = set(batch)
    for item in order:
        if len(batch) == capacity:
            break
        if item not in members and used.isdisjoint(keys[item]):
            batch.append(item)
            members.add(item)
            used.update(keys[item])
    return len(batch) == capacity


class _GlobalBatchSampler(Sampler[list[int]]):
    """Shared machinery: per-epoch plan of global batches, split into per-device batches."""

    def __init__(self, batch_size: int, num_replicas: int | None, drop_last: bool, seed: int) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if num_replicas is None:  # the process group's size: every rank's slice of a global batch
            import torch.distributed as dist

            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if not isinstance(num_replicas, int) or num_replicas <= 0:
            raise ValueError(f"num_replicas must be a positive integer, got {num_replicas!r}")
        self.batch_size = batch_size  # per device: accelerate's BatchSamplerShard reads this attribute
        self.num_replicas = num_replicas
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        self.dropped_rows = 0
        self._plan_cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order (the trainer calls this before every epoch)."""
        self.epoch = epoch

    def _items(self, rng: np.random.Generator) -> tuple[list[int], Sequence[Keys], Sequence[Sequence[int]], int]:
        """This epoch's item order, each item's keys, each item's rows, and rows per item."""
        raise NotImplementedError

    def _plan(self) -> list[list[int]]:
        """Global batches (row indices) of the current epoch, computed once per epoch."""
        if self._plan_cache is not None and self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        order, keys, rows, rows_per_item = self._items(np.random.default_rng([self.seed, self.epoch]))
        capacity = self.batch_size * self.num_replicas // rows_per_item
        full, incomplete = _pack(order, keys, capacity)
        dropped: list[list[int]] = []
        if self.drop_last:
            dropped = incomplete
        elif self.num_replicas == 1:
            full += incomplete
        else:
            for batch in incomplete:
                size = len(batch)
                if _top_up(batch, order, keys, capacity):
                    full.append(batch)
                else:
                    dropped.append(batch[:size])
        self.dropped_rows = sum(len(batch) for batch in dropped) * rows_per_item
        if dropped and (len(dropped) > 1 or not self.drop_last):
            reason = "incomplete" if self.drop_last else "that cannot be completed without clashes"
            warnings.warn(
                f"{type(self).__name__}: epoch {self.epoch}: dropped {len(dropped)} last global batches "
                f"{reason} ({self.dropped_rows} rows)",
                RuntimeWarning, stacklevel=3,
            )
        plan = [[row for item in batch for row in rows[item]] for batch in full]
        self._plan_cache = (self.epoch, plan)
        return plan

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._plan():
            if self.num_replicas == 1:
                yield batch
                continue
            for start in range(0, len(batch), self.batch_size):
                yield batch[start : start + self.batch_size]

    def __len__(self) -> int:
        return len(self._plan()) * self.num_replicas


class NoDuplicatesBatchSampler(_GlobalBatchSampler):
    """Batches in which no text occurs twice, across all text columns and all replicas' slices.

    A duplicate text inside a batch is a false negative for in-batch losses (InfoNCE /
    MultipleNegativesRankingLoss): the same passage as one row's positive and another row's negative.
    Texts are hashed once, up front (stable 64-bit ids, :mod:`contrasent.data.text_ids`); a row's own
    columns may repeat a text (e.g. SimCSE's (x, x) pairs), only clashes between rows count.

    Args:
        texts: one sequence of texts per row (e.g. ``[(anchor, positive, negative), ...]``; ``None``
            entries are ignored), or a ``datasets.Dataset``.
        batch_size: rows per device batch.
        columns: for a ``Dataset``, the text columns (default: every string column).
        num_replicas: processes sharing each global batch (default: the world size, 1 without
            ``torch.distributed``).
        drop_last: drop the incomplete last global batch(es) (see the module docstring).
        seed: the order is a function of ``(seed, epoch)`` only.

    See the module docstring for packing, the tail policy and the distributed layout.
    """

    def __init__(
        self,
        texts: Sequence[Sequence[str | None]] | Any,
        batch_size: int,
        *,
        columns: Sequence[str] | None = None,
        num_replicas: int | None = None,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_replicas, drop_last, seed)
        self.keys: list[Keys] = _row_text_ids(texts, columns)

    def _items(self, rng: np.random.Generator) -> tuple[list[int], Sequence[Keys], Sequence[Sequence[int]], int]:
        order = rng.permutation(len(self.keys)).tolist()
        return order, self.keys, _Singletons(), 1


class GroupByLabelBatchSampler(_GlobalBatchSampler):
    """Batches of ``samples_per_label`` examples of each of ``batch_size / samples_per_label`` labels.

    For in-batch mining with label losses (batch-hard / semi-hard Triplet, SupCon, …), which need
    ≥ 2 examples of a label in a batch. Every epoch each label's examples are shuffled and cut into
    groups of ``samples_per_label``; groups are packed so that a global batch holds distinct labels.

    Labels with fewer than ``samples_per_label`` examples (every single-example label) are skipped: they
    can never be an anchor with a positive. Of a label with n examples, ``n mod samples_per_label``
    examples sit out each epoch (different ones every epoch). :attr:`skipped_labels` and
    :attr:`unused_rows_per_epoch` count these.

    Args:
        labels: one hashable label per row (a list, array or a ``datasets.Dataset`` column).
        batch_size: rows per device batch, a multiple of ``samples_per_label`` (so a label's group never
            straddles two devices).
        samples_per_label: examples of each label in a batch (≥ 2, default 2).
        num_replicas, drop_last, seed: as in :class:`NoDuplicatesBatchSampler`.
    """

    def __init__(
        self,
        labels: Sequence[Any],
        batch_size: int,
        *,
        samples_per_label: int = 2,
        num_replicas: int | None = None,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_replicas, drop_last, seed)
        if not isinstance(samples_per_label, int) or samples_per_label < 2:
            raise ValueError(f"samples_per_label must be an integer >= 2, got {samples_per_label!r}")
        if batch_size % samples_per_label:
            raise ValueError(
                f"batch_size ({batch_size}) must be a multiple of samples_per_label ({samples_per_label})"
            )
        self.samples_per_label = samples_per_label
        groups: dict[Any, list[int]] = {}
        for row, label in enumerate(labels):
            groups.setdefault(label, []).append(row)
        self.groups = [rows for rows in groups.values() if len(rows) >= samples_per_label]
        self.skipped_labels = len(groups) - len(self.groups)
        self.unused_rows_per_epoch = len(labels) - sum(
            len(rows) // samples_per_label * samples_per_label for rows in self.groups
        )
        if not self.groups:
            raise ValueError(f"no label has at least samples_per_label={samples_per_label} examples")
        if self.skipped_labels:
            warnings.warn(
                f"GroupByLabelBatchSampler: {self.skipped_labels} labels have fewer than "
                f"{samples_per_label} examples and are skipped",
                RuntimeWarning, stacklevel=2,
            )

    def _items(self, rng: np.random.Generator) -> tuple[list[int], Sequence[Keys], Sequence[Sequence[int]], int]:
        size = self.samples_per_label
        chunks: list[list[int]] = []
        keys: list[Keys] = []
        for label_index, rows in enumerate(self.groups):
            shuffled = [rows[i] for i in rng.permutation(len(rows))]
            for start in range(0, len(rows) // size * size, size):
                chunks.append(shuffled[start : start + size])
                keys.append((label_index,))
        return rng.permutation(len(chunks)).tolist(), keys, chunks, size


class _Singletons:
    """``rows[i] == (i,)``: each item of :class:`NoDuplicatesBatchSampler` is one row."""

    def __getitem__(self, item: int) -> tuple[int]:
        return (item,)


def _row_text_ids(texts: Any, columns: Sequence[str] | None) -> list[Keys]:
    """Each row's distinct text ids, from row tuples or a ``datasets.Dataset``'s text columns."""
    if hasattr(texts, "column_names") and hasattr(texts, "features"):
        names = list(columns) if columns is not None else [
            name for name, feature in texts.features.items()
            if getattr(feature, "dtype", None) in ("string", "large_string")
        ]
        missing = [name for name in names if name not in texts.column_names]
        if missing or not names:
            raise ValueError(
                f"columns must name text columns of the dataset {texts.column_names}, got {names or columns}"
            )
        # The arrow path is ~100× faster than iterating a datasets Column on large datasets.
        table = texts.select_columns(names).with_format("arrow")[:]
        per_column = [table.column(name).to_pylist() for name in names]
        rows: Any = zip(*per_column)
    elif columns is not None:
        raise ValueError("columns applies only to a datasets.Dataset; texts are already one tuple per row")
    else:
        rows = texts
    keys: list[Keys] = []
    for index, row in enumerate(rows):
        if isinstance(row, str):
            raise TypeError(f"texts[{index}] must be a sequence of a row's texts, got a str")
        keys.append(tuple({text_id(text) for text in row if text is not None}))
    return keys

