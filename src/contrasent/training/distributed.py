r"""Cross-device negatives: gather embeddings from every rank, with gradients flowing back to their owners.

Under ``torchrun`` / ``accelerate launch`` with W processes, rank r encodes its local batch of
:math:`B_r` rows. :func:`all_gather_with_grad` concatenates every rank's rows in rank order into the
global batch of :math:`B = \sum_r B_r` rows, so each anchor sees all B − 1 other rows (and their hard
negatives) as candidates. Ranks may hold different :math:`B_r` (a smaller last batch): sizes are gathered
first.

Gradient rule (the one that makes DDP right). The gather's backward *sums* the gradient that every rank
computed for a row and hands the sum to the row's owner (``torch.distributed.nn.all_gather`` semantics).
Every rank computes the loss :math:`L` over the **whole** gathered batch (all B anchors, the loss
unchanged: InfoNCE, SupCon, … need no distributed code), so each of the W ranks backpropagates the same
:math:`L`; the owner of row j therefore receives :math:`W \, \partial L / \partial e_j`, and DDP divides
the summed parameter gradients by W:

.. math::
    g_\text{DDP} = \frac1W \sum_r W\, \frac{\partial L}{\partial e_{(r)}} \frac{\partial e_{(r)}}{\partial\theta}
                 = \frac{\partial L}{\partial \theta},

the single-process gradient of the loss on the concatenated batch: the loss needs no rescaling.

Outside an initialised process group every function here is the identity (world size 1, rank 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from contrasent.data.batch import Batch


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group; 1 without an initialised process group."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the default group; 0 without an initialised process group."""
    return dist.get_rank() if is_distributed() else 0


def gather_sizes(local_size: int, device: torch.device | None = None) -> list[int]:
    """Every rank's ``local_size``, in rank order (one tiny collective)."""
    if not is_distributed():
        return [local_size]
    size = torch.tensor([local_size], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _gather_padded(tensor: Tensor, sizes: list[int]) -> Tensor:
    """Concatenate every rank's (B_r, ...) ``tensor`` along dim 0; pads to max(B_r) for the collective."""
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


class _AllGatherWithGrad(torch.autograd.Function):
    """Forward: concatenate all ranks' rows. Backward: sum the gradients over ranks, keep the own rows."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: list[int], rank_: int) -> Tensor:
        ctx.start = sum(sizes[:rank_])
        ctx.stop = ctx.start + sizes[rank_]
        return _gather_padded(tensor.detach(), sizes)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        grad = grad_output.contiguous().clone()
        # gloo has no reduce_scatter; an all_reduce of the (B, ...) gradient is as cheap at these sizes.
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None, None


def all_gather_with_grad(tensor: Tensor, sizes: list[int] | None = None) -> Tensor:
    """Concatenate every rank's ``tensor`` (B_r, ...) along dim 0, in rank order: (Σ B_r, ...).

    The local rows keep their autograd graph; the gradient other ranks compute for this rank's rows is
    summed into it (see the module docstring for the loss scale this implies). ``sizes`` (every rank's
    B_r, from :func:`gather_sizes`) skips the size exchange when already known. Identity without a
    process group or with one process.
    """
    if world_size() == 1:
        return tensor
    sizes = sizes if sizes is not None else gather_sizes(tensor.shape[0], tensor.device)
    _check_local_size(tensor, sizes)
    return _AllGatherWithGrad.apply(tensor, sizes, rank())


@torch.no_grad()
def all_gather_no_grad(tensor: Tensor, sizes: list[int] | None = None) -> Tensor:
    """Like :func:`all_gather_with_grad`, without autograd: for labels, text ids and other plain values."""
    if world_size() == 1:
        return tensor
    sizes = sizes if sizes is not None else gather_sizes(tensor.shape[0], tensor.device)
    _check_local_size(tensor, sizes)
    return _gather_padded(tensor, sizes)


def _check_local_size(tensor: Tensor, sizes: list[int]) -> None:
    if tensor.ndim == 0 or tensor.shape[0] != sizes[rank()]:
        raise ValueError(
            f"tensor must have this rank's {sizes[rank()]} rows along dim 0, got shape {tuple(tensor.shape)}"
        )


def gather_batch(
    with_grad: Mapping[str, Tensor | None], without_grad: Mapping[str, Tensor | None] | None = None
) -> dict[str, Tensor | None]:
    """Gather a step's local tensors into the global batch: one size exchange, then one gather each.

    Args:
        with_grad: embeddings, e.g. ``{"anchors": (B_r, d), "positives": (B_r, d),
            "negatives": (B_r, k, d) or None}``; gathered with :func:`all_gather_with_grad`.
        without_grad: labels, text ids, …, e.g. ``{"labels": (B_r,)}``; gathered without autograd.

    Every tensor must have the same B_r rows. Returns every gathered tensor (Σ B_r, ...) by the name it
    was passed under (``None`` stays ``None``); compute the loss on them for all anchors, unscaled.

    Example:
        >>> batch = gather_batch({"anchors": a, "positives": p, "negatives": n})
        >>> loss = InfoNCE()(batch["anchors"], batch["positives"], batch["negatives"])
    """
    without_grad = without_grad or {}
    present = {name: t for name, t in {**with_grad, **without_grad}.items() if t is not None}
    if not present:
        raise ValueError("gather_batch needs at least one tensor, got only None values")
    local_sizes = {name: t.shape[0] if t.ndim else None for name, t in present.items()}
    if len(set(local_sizes.values())) != 1 or None in local_sizes.values():
        raise ValueError(f"every tensor must have the same number of rows B_r along dim 0, got {local_sizes}")
    sizes = gather_sizes(next(iter(local_sizes.values())), next(iter(present.values())).device)
    gathered: dict[str, Tensor | None] = {}
    for name, tensor in with_grad.items():
        gathered[name] = None if tensor is None else all_gather_with_grad(tensor, sizes)
    for name, tensor in without_grad.items():
        gathered[name] = None if tensor is None else all_gather_no_grad(tensor, sizes)
    return gathered


def gather_step(views: Tensor, batch: Batch) -> tuple[Tensor, Batch]:
    """Gather one training step's (V, B_r, d) view embeddings and per-row inputs into the global batch.

    The views are gathered with gradients (rows in rank order: (V, Σ B_r, d)); ``text_ids`` (V, B_r),
    ``class_labels`` (B_r,), ``scores`` (B_r,) and, with hard negatives (V > 2), ``negative_valid``
    (B_r, V − 2), without. Returns the global views and a copy of ``batch`` with those fields replaced by
    their global versions (its token ``chunks``, ``restore`` and ``row_ids`` stay this rank's).

    Every rank must make the same collectives: a rank whose rows all have their hard negatives (no
    ``negative_valid``) sends all-True, so the global batch has ``negative_valid`` whenever V > 2.
    """
    negative_valid = batch.negative_valid
    if negative_valid is None and views.shape[0] > 2:
        negative_valid = torch.ones(views.shape[1], views.shape[0] - 2, dtype=torch.bool, device=views.device)
    gathered = gather_batch(
        {"views": views.transpose(0, 1)},  # rows first: gather along dim 0
        {"text_ids": batch.text_ids.T, "class_labels": batch.class_labels, "scores": batch.scores,
         # as uint8: not every backend gathers bool tensors
         "negative_valid": None if negative_valid is None else negative_valid.to(views.device, torch.uint8)},
    )
    valid = gathered["negative_valid"]
    global_batch = replace(batch, text_ids=gathered["text_ids"].T, class_labels=gathered["class_labels"],
                           scores=gathered["scores"], negative_valid=None if valid is None else valid.bool())
    return gathered["views"].transpose(0, 1), global_batch
