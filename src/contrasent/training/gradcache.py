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

:func:`cached_loss` runs stages 1 and 2 at once and returns the loss as a scalar whose backward runs
stage 3, as reentrant activation checkpointing does. Whoever calls ``backward`` on it (a plain loop,
``transformers.Trainer.training_step`` with its gradient-accumulation division, ``accelerator.backward``
with fp16 loss scaling) scales the incoming gradient ``grad_output``, and stage 3 backpropagates
:math:`g_e \cdot` ``grad_output``: the cached step is a drop-in for the uncached one.

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

ContextFactory = Callable[[], contextlib.AbstractContextManager[Any]]


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


@dataclass(frozen=True)
class AutocastState:
    """The autocast settings in force, per device type, to re-enter where they are not: autocast is
    thread-local, and autograd may run a backward on another thread."""

    enabled: tuple[tuple[str, torch.dtype], ...]

    @classmethod
    def capture(cls, device_types: Sequence[str]) -> AutocastState:
        return cls(tuple((device, torch.get_autocast_dtype(device)) for device in dict.fromkeys(device_types)
                         if torch.is_autocast_enabled(device)))

    def entered(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for device, dtype in self.enabled:
            stack.enter_context(torch.autocast(device, dtype=dtype))
        return stack


@dataclass
class _Replay:
    """What stage 3 needs: the chunks, their random states, the cached gradients w.r.t. their embeddings."""

    encode: Callable[[dict[str, Tensor]], Tensor]
    chunks: Sequence[dict[str, Tensor]]
    states: list[RandomState]
    embedding_grads: list[Tensor]
    after_forward: RandomState
    no_sync: ContextFactory
    autocast: AutocastState

    def backward(self, grad_output: Tensor) -> None:
        """Stage 3: re-embed each chunk with a graph, from its saved random state, and backpropagate
        ``embedding_grad · grad_output``; gradients are reduced across devices with the last chunk only."""
        try:
            for index, (chunk, state, grad) in enumerate(zip(self.chunks, self.states, self.embedding_grads)):
                last = index == len(self.chunks) - 1
                state.restore()
                with self.no_sync() if not last else contextlib.nullcontext():
                    with torch.enable_grad(), self.autocast.entered():
                        embeddings = self.encode(chunk)
                    torch.autograd.backward(embeddings, (grad * grad_output).to(embeddings.dtype))
        finally:
            self.after_forward.restore()


class _ReplayOnBackward(torch.autograd.Function):
    """Identity on the loss value; its backward hands ``grad_output`` to stage 3."""

    @staticmethod
    def forward(ctx: Any, value: Tensor, replay: _Replay) -> Tensor:
        ctx.replay = replay
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[None, None]:
        ctx.replay.backward(grad_output)
        return None, None


def cached_loss(
    encode: Callable[[dict[str, Tensor]], Tensor],
    chunks: Sequence[dict[str, Tensor]],
    loss_fn: Callable[[list[Tensor]], Tensor],
    no_sync: ContextFactory = contextlib.nullcontext,
) -> Tensor:
    """The loss of a step, with gradient caching: backpropagating it accumulates into the parameters'
    ``.grad`` exactly what backpropagating ``loss_fn([encode(c) for c in chunks])`` would (up to float
    rounding), holding one chunk's activations at a time.

    Stages 1 and 2 run here; the returned scalar (the loss's value) runs stage 3 when ``backward`` reaches
    it, with the autocast settings in force here.

    Args:
        encode: ``encode(chunk) -> (m, d)`` embeddings of one chunk's texts, e.g. ``model(**chunk)``.
        chunks: the step's token chunks (:attr:`Batch.chunks <contrasent.data.batch.Batch.chunks>`).
        loss_fn: ``loss_fn(chunk_embeddings) -> scalar`` from the list of every chunk's (m_i, d)
            embeddings, in chunk order (gathering and the loss happen here). Called once, with leaves that
            require grad.
        no_sync: context manager that suspends the cross-device gradient all-reduce (DDP ``no_sync``);
            entered for every chunk's re-embedding but the last, so the gradients are reduced once per step.
    """
    if not chunks:
        raise ValueError("cached_loss needs at least one chunk")
    devices = [tensor.device.type for chunk in chunks for tensor in chunk.values()]
    autocast = AutocastState.capture(["cpu", *devices])
    states: list[RandomState] = []
    cached: list[Tensor] = []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandomState.capture())
            cached.append(encode(chunk))
    after_forward = RandomState.capture()

    # Leaves in at least float32: a half-precision leaf would round its gradient to half precision.
    leaves = [e.detach().to(torch.promote_types(e.dtype, torch.float32)).requires_grad_() for e in cached]
    del cached
    with torch.enable_grad():
        loss = loss_fn(leaves)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(leaf) if grad is None else grad for leaf, grad in zip(leaves, grads)]
    replay = _Replay(encode, chunks, states, grads, after_forward, no_sync, autocast)
    return _ReplayOnBackward.apply(loss.detach().requires_grad_(), replay)
