"""Batch samplers: no duplicate text per (global) batch, label groups, epochs, and accelerate sharding."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from accelerate.data_loader import BatchSamplerShard

from contrasent.data.samplers import GroupByLabelBatchSampler, NoDuplicatesBatchSampler


def rows_with_duplicates(n: int = 301, seed: int = 0) -> list[tuple[str, str, str]]:
    """(anchor, positive, negative) rows drawing from small pools, so clashes are frequent."""
    rng = random.Random(seed)
    return [(f"q{rng.randrange(150)}", f"d{rng.randrange(200)}", f"d{rng.randrange(200)}") for _ in range(n)]


def texts_of(rows, batch):
    """Every text of the batch's rows, a row's own repeats counted once."""
    return [text for i in batch for text in set(rows[i])]


def shard(sampler, replicas):
    """What each rank's DataLoader iterates under accelerate (batch i goes to rank i % replicas)."""
    return [list(BatchSamplerShard(sampler, num_processes=replicas, process_index=r)) for r in range(replicas)]


@pytest.mark.parametrize("drop_last", [False, True])
def test_no_batch_repeats_a_text_and_no_row_is_lost(drop_last):
    rows = rows_with_duplicates()
    sampler = NoDuplicatesBatchSampler(rows, batch_size=16, drop_last=drop_last, num_replicas=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    for batch in batches:
        texts = texts_of(rows, batch)
        assert len(texts) == len(set(texts))
    seen = Counter(i for batch in batches for i in batch)
    assert all(count == 1 for count in seen.values())
    assert len(seen) + sampler.dropped_rows == len(rows)
    if drop_last:
        assert all(len(batch) == 16 for batch in batches)
    else:
        assert sampler.dropped_rows == 0


@pytest.mark.parametrize("replicas", [2, 3])
def test_accelerate_sharding_gives_every_rank_a_slice_of_one_duplicate_free_global_batch(replicas):
    rows = rows_with_duplicates()
    sampler = NoDuplicatesBatchSampler(rows, batch_size=8, num_replicas=replicas, seed=3)
    per_rank = shard(sampler, replicas)
    steps = len(per_rank[0])
    assert all(len(batches) == steps == len(sampler) // replicas for batches in per_rank)
    assert all(len(batch) == 8 for batches in per_rank for batch in batches)
    for step in range(steps):
        global_batch = [i for batches in per_rank for i in batches[step]]
        texts = texts_of(rows, global_batch)
        assert len(texts) == len(set(texts)), f"duplicate text across ranks at step {step}"
    seen = {i for batches in per_rank for batch in batches for i in batch}
    assert seen == set(range(len(rows)))  # the tail was topped up, not dropped


def test_order_is_deterministic_and_changes_with_the_epoch():
    rows = rows_with_duplicates()
    first = NoDuplicatesBatchSampler(rows, batch_size=16, num_replicas=2, seed=1)
    second = NoDuplicatesBatchSampler(rows, batch_size=16, num_replicas=2, seed=1)
    epoch0 = list(first)
    assert epoch0 == list(second)  # what every rank computes on its own
    first.set_epoch(1)
    epoch1 = list(first)
    assert epoch1 != epoch0
    assert len(shard(first, 2)[0]) == len(shard(first, 2)[1])
    first.set_epoch(0)
    assert list(first) == epoch0


def test_a_row_may_repeat_its_own_text_and_a_shared_text_is_spread_over_batches():
    rows = [("same", "same")] + [(f"a{i}", "popular") for i in range(5)] + [(f"b{i}", f"c{i}") for i in range(10)]
    batches = list(NoDuplicatesBatchSampler(rows, batch_size=4, num_replicas=1))
    assert sorted(i for batch in batches for i in batch) == list(range(len(rows)))
    for batch in batches:
        assert sum(rows[i][1] == "popular" for i in batch) <= 1


def test_dataset_input_matches_row_tuples():
    datasets = pytest.importorskip("datasets")
    rows = rows_with_duplicates(n=100)
    dataset = datasets.Dataset.from_dict(
        {"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows], "negative": [r[2] for r in rows],
         "score": list(range(100))}
    )
    from_dataset = NoDuplicatesBatchSampler(dataset, batch_size=8, num_replicas=1)
    assert list(from_dataset) == list(NoDuplicatesBatchSampler(rows, batch_size=8, num_replicas=1))
    with pytest.raises(ValueError, match="columns must name text columns"):
        NoDuplicatesBatchSampler(dataset, batch_size=8, columns=["answer"])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        NoDuplicatesBatchSampler([("a", "b")], batch_size=0)
    with pytest.raises(TypeError, match=r"texts\[0\] must be a sequence"):
        NoDuplicatesBatchSampler(["a"], batch_size=1)
    with pytest.raises(ValueError, match="multiple of samples_per_label"):
        GroupByLabelBatchSampler([0, 0, 1, 1], batch_size=5, samples_per_label=2)


def labels_fixture() -> list[int]:
    rng = random.Random(0)
    return [rng.randrange(25) for _ in range(400)] + [100, 101]  # 100, 101: single-example labels


@pytest.mark.parametrize("samples_per_label", [2, 4])
def test_group_by_label_batches_hold_distinct_labels_with_k_examples_each(samples_per_label):
    labels = labels_fixture()
    with pytest.warns(RuntimeWarning, match="2 labels have fewer"):
        sampler = GroupByLabelBatchSampler(labels, batch_size=8, samples_per_label=samples_per_label, num_replicas=1)
    assert sampler.skipped_labels == 2
    batches = list(sampler)
    for batch in batches:
        counts = Counter(labels[i] for i in batch)
        assert set(counts.values()) == {samples_per_label}
    used = [i for batch in batches for i in batch]
    assert len(used) == len(set(used)) == len(labels) - sampler.unused_rows_per_epoch
    assert 400 not in used and 401 not in used


def test_group_by_label_sharding_and_epochs():
    labels = labels_fixture()
    with pytest.warns(RuntimeWarning):
        sampler = GroupByLabelBatchSampler(labels, batch_size=6, samples_per_label=3, num_replicas=2, drop_last=True)
    per_rank = shard(sampler, 2)
    assert len(per_rank[0]) == len(per_rank[1]) > 0
    for step in range(len(per_rank[0])):
        counts = Counter(labels[i] for batches in per_rank for i in batches[step])
        assert set(counts.values()) == {3}
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
