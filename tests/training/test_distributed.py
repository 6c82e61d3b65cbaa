"""Cross-device gathering: 2 gloo processes (float64) give the loss and gradients of 1 process on the
concatenated batch, for InfoNCE with hard negatives (plain, GTE's directions, Matryoshka) and SupCon; `gather_step` gathers a training batch's
views (gradients summed back to their owner) and its text ids, labels and scores in rank order."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from contrasent.data.batch import Batch
from contrasent.losses import InfoNCE, Matryoshka, SupCon
from contrasent.training import ContrastiveStep
from contrasent.training.distributed import (
    all_gather_no_grad,
    all_gather_with_grad,
    gather_batch,
    gather_step,
    rank,
    world_size,
)

SRC = Path(__file__).resolve().parents[2] / "src"
SIZES = [3, 2]  # unequal local batches: rank 0 holds rows 0-2, rank 1 rows 3-4
K, D_IN, D_OUT, TAU = 2, 5, 4, 0.1
GTE = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
# the anchor_positive losses compared; every one sees the gathered (global) batch
ANCHOR_POSITIVE = {
    "infonce": lambda: InfoNCE(temperature=TAU),
    "gte": lambda: InfoNCE(temperature=TAU, directions=GTE),
    "matryoshka": lambda: Matryoshka(InfoNCE(temperature=TAU, directions=GTE), [D_OUT, 2], [1.0, 0.5]),
}


def make_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    total = sum(SIZES)
    return {
        "anchors": torch.randn(total, D_IN, generator=g, dtype=torch.float64),
        "positives": torch.randn(total, D_IN, generator=g, dtype=torch.float64),
        "negatives": torch.randn(total, K, D_IN, generator=g, dtype=torch.float64),
        "labels": torch.tensor([0, 1, 0, 1, 2]),
        "weight": torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64),
        "bias": torch.randn(D_OUT, generator=g, dtype=torch.float64),
    }


def make_model(inputs: dict[str, torch.Tensor]) -> nn.Linear:
    model = nn.Linear(D_IN, D_OUT).double()
    with torch.no_grad():
        model.weight.copy_(inputs["weight"])
        model.bias.copy_(inputs["bias"])
    return model


def encode(model: nn.Module, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor):
    """One forward over all texts of the step (as a trainer does), split back into the three roles."""
    out = model(torch.cat([a, p, n.flatten(0, 1)]))
    b = a.shape[0]
    return out[:b], out[b : 2 * b], out[2 * b :].view(b, K, -1)


def losses_and_grads(model: nn.Module, inputs, rows: slice) -> dict[str, object]:
    """Each scenario's loss over the (gathered) batch, unscaled, and the parameter gradients."""
    results: dict[str, object] = {}
    for scenario in (*ANCHOR_POSITIVE, "supcon"):
        model.zero_grad()
        a, p, n = encode(model, inputs["anchors"][rows], inputs["positives"][rows], inputs["negatives"][rows])
        batch = gather_batch({"anchors": a, "positives": p, "negatives": n}, {"labels": inputs["labels"][rows]})
        if scenario in ANCHOR_POSITIVE:
            loss = ANCHOR_POSITIVE[scenario]()(batch["anchors"], batch["positives"], batch["negatives"])
        else:
            embeddings = torch.cat([batch["anchors"], batch["positives"]])
            loss = SupCon(temperature=TAU)(embeddings, batch["labels"].repeat(2))
        loss.backward()
        grads = [param.grad.detach().clone() for param in model.parameters()]
        results[scenario] = (loss.detach().clone(), grads)
    return results


def step_batch(inputs, rows: slice) -> tuple[torch.Tensor, Batch]:
    """(V=2, B_r, d) views with gradients and the batch fields `gather_step` gathers, for ``rows``."""
    views = torch.stack([inputs["anchors"][rows], inputs["positives"][rows]]).requires_grad_()
    ids = torch.arange(sum(SIZES))[rows]
    batch = Batch(chunks=[], restore=torch.arange(2 * len(ids)), num_views=2, text_ids=torch.stack([ids, 100 + ids]),
                  class_labels=inputs["labels"][rows], scores=ids.double() / 10, row_ids=ids)
    return views, batch


def gathered_step(inputs, rows: slice) -> dict[str, torch.Tensor]:
    """`gather_step` on this rank's rows, and the gradient of a loss on the global views w.r.t. the local ones."""
    views, batch = step_batch(inputs, rows)
    global_views, global_batch = gather_step(views, batch)
    weights = torch.arange(global_views.numel(), dtype=torch.float64).view(global_views.shape)
    (global_views * weights).sum().backward()
    return {"views": global_views.detach(), "text_ids": global_batch.text_ids, "labels": global_batch.class_labels,
            "scores": global_batch.scores, "row_ids": global_batch.row_ids, "grad": views.grad}


# Rows short of hard negatives: rank 0's rows (0-2) have all theirs, so it sends no validity mask of its own.
SHORT_VALID = torch.tensor([[True, True]] * 3 + [[False, True], [False, False]])


def short_rows_step(model: nn.Module, inputs, rows: slice) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The step's InfoNCE loss (gathered under a process group) on ``rows`` with the hard negatives of
    :data:`SHORT_VALID` missing, and the parameter gradients."""
    model.zero_grad()
    valid, negatives = SHORT_VALID[rows], inputs["negatives"][rows]
    texts = [inputs["anchors"][rows], inputs["positives"][rows], *(negatives[valid[:, m], m] for m in range(K))]
    embeddings = model(torch.cat(texts))  # the texts present only, view-major
    ids = torch.arange(2 + K)[:, None] * 100 + torch.arange(sum(SIZES))[rows]
    batch = Batch(chunks=[], restore=torch.arange(embeddings.shape[0]), num_views=2 + K, text_ids=ids,
                  negative_valid=None if bool(valid.all()) else valid)
    step = ContrastiveStep(InfoNCE(temperature=TAU), gather=world_size() > 1)
    loss = step.loss_from_embeddings(embeddings, batch, training=False)
    loss.backward()
    return loss.detach(), [param.grad.detach().clone() for param in model.parameters()]


def worker(rank_: int, init_file: str, out_dir: str) -> None:
    # A bounded timeout: a collective that cannot complete fails the test instead of hanging the suite.
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank_, world_size=len(SIZES),
                            timeout=timedelta(seconds=120))
    try:
        inputs = make_inputs()
        model = nn.parallel.DistributedDataParallel(make_model(inputs))
        start = sum(SIZES[:rank_])
        results = losses_and_grads(model, inputs, slice(start, start + SIZES[rank_]))
        results["step"] = gathered_step(inputs, slice(start, start + SIZES[rank_]))
        results["short"] = short_rows_step(model, inputs, slice(start, start + SIZES[rank_]))
        results["ids"] = all_gather_no_grad(torch.arange(SIZES[rank_]) + 10 * rank_)
        results["gathered"] = all_gather_with_grad(inputs["anchors"][start : start + SIZES[rank_]])
        results["world"] = (world_size(), rank())
        torch.save(results, Path(out_dir) / f"rank{rank_}.pt")
        # Tear down together: a rank destroying its group while its peer still uses it can leave the
        # peer blocked for ever at exit (seen under load), and mp.spawn would wait on it.
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory) -> list[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("gloo")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), previous]))
    try:
        mp.spawn(worker, args=(str(tmp / "init"), str(tmp)), nprocs=len(SIZES), join=True)
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous
    return [torch.load(tmp / f"rank{r}.pt") for r in range(len(SIZES))]


@pytest.mark.parametrize("scenario", [*ANCHOR_POSITIVE, "supcon"])
def test_two_processes_match_one_process_on_the_concatenated_batch(two_process_results, scenario):
    inputs = make_inputs()
    reference = losses_and_grads(make_model(inputs), inputs, slice(None))
    ref_loss, ref_grads = reference[scenario]
    for r, results in enumerate(two_process_results):
        loss, grads = results[scenario]
        torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-6)
        for grad, ref_grad in zip(grads, ref_grads):
            torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-6, msg=f"rank {r}, {scenario}")


def test_rows_short_of_negatives_gather_to_the_one_process_loss(two_process_results):
    """The validity mask travels with the embeddings (from a rank that has none of its own too)."""
    inputs = make_inputs()
    ref_loss, ref_grads = short_rows_step(make_model(inputs), inputs, slice(None))
    for r, results in enumerate(two_process_results):
        loss, grads = results["short"]
        torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-6)
        for grad, ref_grad in zip(grads, ref_grads):
            torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-6, msg=f"rank {r}")


def test_gather_concatenates_in_rank_order_with_unequal_sizes(two_process_results):
    inputs = make_inputs()
    for r, results in enumerate(two_process_results):
        assert results["world"] == (2, r)
        assert results["ids"].tolist() == [0, 1, 2, 10, 11]
        torch.testing.assert_close(results["gathered"], inputs["anchors"], rtol=0, atol=0)


def test_gather_step_gathers_the_batch_in_rank_order(two_process_results):
    """Views, text ids (V, B), labels and scores become the global batch's; the token chunks and row ids stay
    local; each rank's views get the gradient of the (same) global loss from both ranks: 2x their weights."""
    inputs = make_inputs()
    views, batch = step_batch(inputs, slice(None))
    weights = torch.arange(views.numel(), dtype=torch.float64).view(views.shape)
    for r, results in enumerate(two_process_results):
        own = slice(sum(SIZES[:r]), sum(SIZES[: r + 1]))
        step = results["step"]
        torch.testing.assert_close(step["views"], views.detach(), rtol=0, atol=0)
        for name, expected in (("text_ids", batch.text_ids), ("labels", batch.class_labels),
                               ("scores", batch.scores), ("row_ids", batch.row_ids[own])):
            assert torch.equal(step[name], expected), (r, name)
        torch.testing.assert_close(step["grad"], 2 * weights[:, own], rtol=0, atol=0)


def test_single_process_is_the_identity():
    x = torch.randn(3, 2, requires_grad=True)
    assert (world_size(), rank()) == (1, 0)
    assert all_gather_with_grad(x) is x
    assert all_gather_no_grad(x) is x
    batch = gather_batch({"anchors": x, "negatives": None}, {"labels": torch.arange(3)})
    assert batch["anchors"] is x and batch["negatives"] is None
    views, step = step_batch(make_inputs(), slice(None))
    global_views, global_step = gather_step(views, step)
    assert torch.equal(global_views, views)
    assert torch.equal(global_step.text_ids, step.text_ids) and global_step.class_labels is step.class_labels


def test_gather_batch_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        gather_batch({"anchors": torch.zeros(3, 2)}, {"labels": torch.zeros(2)})
