r"""Gradient caching (GradCache, Gao et al. 2021): a large-batch contrastive step in bounded memory.

A contrastive loss couples every embedding of the batch, so the usual step keeps the activations of all
N texts alive until the backward. GradCache splits the step into three stages over chunks of
``m`` texts:

1. **embed without a graph**: run the encoder on each chunk under ``torch.no_grad`` and keep only its
   (m, d) embeddings, saving the random-number state before each chunk;
2. **loss and its gradient w.r.t. the embeddings**: compute the loss :math:`L` on the (detached)
   embeddings of the whole batch (gathered across devices when that is on) and
   :math:`g_e = \partial L / \partial e` for every embedding, a cheap (N, d) backward;
3. **re-embed with a graph and backpropagate the cached gradient**: for each chunk, restore its random
   state (so dropout draws the same masks as in stage 1, which matters because dropout is SimCSE's
   augmentation), run the encoder again and backpropagate the surrogate :math:`\sum_j e_j \cdot g_{e_j}`,
   whose gradient w.r.t. the parameters is :math:`\sum_j (\partial e_j/\partial\theta)^\top g_{e_j} =
   \partial L/\partial\theta` by the chain rule.

Peak activation memory is that of one chunk; the price is a second forward pass. The loss is computed
once, on the whole batch's embeddings, so every loss works unchanged. At the end the random state is
put back where stage 1 left it, so the next step draws what an uncached step would have drawn.

Reference: Gao, Zhang, Han, Callan 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class RandomState:
    """The CPU and (when CUDA is in use) every CUDA device's random-number generator state."""

    cpu: Tensor
    cuda: list[Tensor] | None

    @classmethod
    def capture(cls) -> RandomState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def grad_cache_step(
    encode: Callable[[dict[str, Tensor]], Tensor],
    chunks: Sequence[dict[str, Tensor]],
    loss_fn: Callable[[list[Tensor]], Tensor],
    backward: Callable[[Tensor], None],
    no_sync: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Tensor:
    """One training step's forward and backward with gradient caching; returns the detached loss.

    Accumulates into the parameters' ``.grad`` exactly what ``backward(loss_fn([encode(c) for c in
    chunks]))`` would (up to float rounding), holding one chunk's activations at a time.

    Args:
        encode: ``encode(chunk) -> (m, d)`` embeddings of one chunk's texts, e.g. ``model(**chunk)``.
        chunks: the step's token chunks (``ContrastiveCollator``'s ``features``).
        loss_fn: ``loss_fn(chunk_embeddings) -> scalar`` from the list of every chunk's (m_i, d)
            embeddings, in chunk order (gathering, the loss and any gradient-accumulation scaling happen
            here). Called once, with leaves that require grad.
        backward: how to backpropagate a scalar into the parameters, e.g. ``accelerator.backward`` (it
            applies mixed-precision loss scaling); called once per chunk with the surrogate loss.
        no_sync: context manager that suspends the cross-device gradient all-reduce (DDP ``no_sync``);
            entered for every chunk but the last, so the gradients are reduced once per step.
        autocast: context manager for the forward passes and the loss (mixed precision).
    """
    if not chunks:
        raise ValueError("grad_cache_step needs at least one chunk")
    states: list[RandomState] = []
    cached: list[Tensor] = []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandomState.capture())
            with autocast():
                cached.append(encode(chunk))
    after_forward = RandomState.capture()

    # Leaves in at least float32: a half-precision leaf would round its gradient to half precision.
    leaves = [e.detach().to(torch.promote_types(e.dtype, torch.float32)).requires_grad_() for e in cached]
    del cached
    with autocast():
        loss = loss_fn(leaves)
    embedding_grads = torch.autograd.grad(loss, leaves, allow_unused=True)

    try:
        for index, (chunk, state, grad) in enumerate(zip(chunks, states, embedding_grads)):
            last = index == len(chunks) - 1
            state.restore()
            with no_sync() if not last else contextlib.nullcontext():
                with autocast():
                    embeddings = encode(chunk)
                grad = torch.zeros_like(leaves[index]) if grad is None else grad
                backward((embeddings.to(grad.dtype) * grad).sum())
    finally:
        after_forward.restore()
    return loss.detach()

