r"""`ContrastiveStep`: one training step's forward, from a batch to the loss, with or without the Trainer.

The pipeline, in order:

1. **embed** every text of the :class:`~contrasent.data.batch.Batch` (one forward pass per chunk) into
   (V, B, d) view embeddings, and stop if any is NaN or inf, naming the dataset rows; a hard negative a
   row lacks (``Batch.negative_valid``) is not encoded and its slot holds zeros;
2. in training, record the alignment and uniformity of views 0 and 1 (Wang & Isola 2020) and, with a
   :class:`~contrasent.training.queue.MomentumEncoder`, replace views 1.. by its keys (MoCo);
3. **gather** the views (with gradients) and the labels, scores and text ids of every process
   (:func:`~contrasent.training.distributed.gather_step`), so the loss sees the global batch;
4. **arrange** them as the loss's ``input_format`` requires, and add the optional inputs it declares:
   false-negative masks and the negative queue (:mod:`contrasent.training.loss_inputs`); the missing hard
   negatives are masked out of every row's candidates (a loss that takes negatives without a ``mask`` is
   refused when some are missing);
5. the **loss**, stopped if NaN or inf; in training, the batch's positives and present negatives then join
   the queue.

With ``cache_gradients`` the step runs GradCache (:mod:`contrasent.training.gradcache`): the returned
loss's backward re-embeds the chunks, so memory grows with the chunk, not the batch.

A plain PyTorch loop trains with it as the Trainer does::

    step = ContrastiveStep(InfoNCE(temperature=0.05))
    for batch in loader:                          # batches from ContrastiveCollator
        step(model, batch).backward()
        optimizer.step(); optimizer.zero_grad()
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from contrasent.data.batch import Batch
from contrasent.losses.geometry import alignment, uniformity
from contrasent.training.distributed import gather_step
from contrasent.training.gradcache import ContextFactory, cached_loss
from contrasent.training.loss_inputs import (
    FalseNegativeMasking,
    arranged_inputs,
    candidate_inputs,
    check_missing_negatives,
)
from contrasent.training.queue import MomentumEncoder, NegativeQueue


class ContrastiveStep:
    """Batch -> scalar loss (a per-batch mean) for a loss of :mod:`contrasent.losses`.

    Args:
        loss: the objective; its ``input_format`` and ``optional_inputs`` say how it is called.
        gather: gather every process's embeddings into the global batch (several processes only).
        masking: the false-negative masks built for a loss that accepts ``mask``.
        queue: past embeddings handed to a loss that accepts ``extra_candidates``; fed after each step.
        momentum_encoder: encodes views 1.. (positives, negatives) in training (MoCo).
        cache_gradients: GradCache over the batch's chunks in training (see the module docstring).
        row_names: names dataset rows (by their ``Batch.row_ids``) in errors, e.g. with their file and
            line (:meth:`contrasent.data.row_sources.RowSource.rows`); default ``"dataset rows [...]"``.

    :attr:`geometry` holds the alignment and uniformity of the training batches since the last
    :meth:`GeometryLog.pop_means`.
    """

    def __init__(
        self,
        loss: nn.Module,
        *,
        gather: bool = False,
        masking: FalseNegativeMasking | None = None,
        queue: NegativeQueue | None = None,
        momentum_encoder: MomentumEncoder | None = None,
        cache_gradients: bool = False,
        row_names: Callable[[Sequence[int]], str] | None = None,
    ) -> None:
        self.loss = loss
        self.row_names = row_names
        self.gather = gather
        self.masking = masking or FalseNegativeMasking()
        self.queue = queue
        self.momentum_encoder = momentum_encoder
        self.cache_gradients = cache_gradients
        self.geometry = GeometryLog()

    def __call__(
        self, model: nn.Module, batch: Batch, *, step_number: int | None = None,
        no_sync: ContextFactory = contextlib.nullcontext,
    ) -> Tensor:
        """The loss of ``batch`` under ``model`` (training when ``model.training``).

        ``step_number`` names the step in errors; ``no_sync`` (DDP's ``no_sync``) suspends the gradient
        all-reduce for all GradCache chunks but the last.
        """
        training = model.training
        if self.cache_gradients and training and torch.is_grad_enabled():
            def loss_fn(parts: list[Tensor]) -> Tensor:
                return self.loss_from_embeddings(torch.cat(parts)[batch.restore], batch, step_number=step_number)

            return cached_loss(lambda chunk: model(**chunk), batch.chunks, loss_fn, no_sync)
        embeddings = self.embed(model, batch)
        return self.loss_from_embeddings(embeddings, batch, training=training, step_number=step_number)

    @staticmethod
    def embed(model: nn.Module, batch: Batch) -> Tensor:
        """(n, d) embeddings of every text of ``batch``, view-major, one forward pass per chunk (n = V·B
        less the missing hard negatives)."""
        return torch.cat([model(**chunk) for chunk in batch.chunks])[batch.restore]

    def loss_from_embeddings(
        self, embeddings: Tensor, batch: Batch, *, training: bool = True, step_number: int | None = None
    ) -> Tensor:
        """(n, d) view-major embeddings of this process's texts (:meth:`embed`) -> the loss of the (global)
        batch."""
        views = placed_views(embeddings, batch)  # (V, B, d)
        check_finite(views, batch, "the encoder produced NaN or inf embeddings", step_number, self.row_names)
        if training:
            self.geometry.record(views)
            if self.momentum_encoder is not None:
                keys = placed_views(self.momentum_encoder(batch), batch)
                views = torch.cat([views[:1], keys[1:].to(views.dtype)])
        if self.gather:
            views, batch = gather_step(views, batch)
        check_missing_negatives(self.loss, batch)
        extra = candidate_inputs(self.loss, views, batch.text_ids, self.masking, self.queue, batch.negative_valid)
        loss = self.loss(*arranged_inputs(self.loss, views, batch), **extra)
        check_finite(loss.reshape(1, 1, 1), batch, "the loss is NaN or inf", step_number, self.row_names)
        if training and self.queue is not None:  # after the loss: a batch is not its own queue entry
            self.enqueue(views, batch)
        return loss

    def enqueue(self, views: Tensor, batch: Batch) -> None:
        """Queue the (V, B, d) ``views``' positives and hard negatives, without the missing ones."""
        keys, ids = views[1:].flatten(0, 1).detach(), batch.text_ids[1:].flatten()
        present = batch.present()
        if present is not None:
            kept = present[1:].flatten().to(keys.device)
            keys, ids = keys[kept], ids[kept.to(ids.device)]
        self.queue.enqueue(keys, ids)


def placed_views(embeddings: Tensor, batch: Batch) -> Tensor:
    """(n, d) view-major embeddings of the texts present -> (V, B, d), zeros in missing hard-negative slots.

    The zeros keep every shape (B, k, d); the step masks those candidates out of the loss, so they neither
    score nor receive a gradient. Without missing texts this is a view of ``embeddings``.
    """
    present = batch.present()
    if present is None:
        return embeddings.view(batch.num_views, -1, embeddings.shape[-1])
    present = present.to(embeddings.device)
    if embeddings.shape[0] != int(present.sum()):
        raise ValueError(f"got {embeddings.shape[0]} embeddings for the batch's {int(present.sum())} texts present")
    slots = present.flatten().nonzero().squeeze(1)
    placed = embeddings.new_zeros(present.numel(), embeddings.shape[-1]).index_copy(0, slots, embeddings)
    return placed.view(*present.shape, -1)


def check_finite(
    values: Tensor, batch: Batch, what: str, step_number: int | None = None,
    row_names: Callable[[Sequence[int]], str] | None = None,
) -> None:
    """Stop at the first non-finite value with a ``FloatingPointError`` naming the step (when given) and the
    dataset rows of the batch it came from (with ``row_names``, e.g. by file and line).

    ``values``: (V, B, ...) per-row values, or (1, 1, 1) for a batch-level value such as the loss.
    """
    finite = torch.isfinite(values).reshape(values.shape[0], values.shape[1], -1).all(dim=-1).all(dim=0)
    if bool(finite.all()):
        return
    row_ids = batch.row_ids
    name = row_names or (lambda ids: f"dataset rows {list(ids)}")
    if row_ids is None:
        rows = "rows unknown"
    elif finite.numel() == row_ids.numel():
        rows = name(row_ids[~finite].tolist())
    else:
        rows = f"batch of {name(row_ids.tolist())}"
    step = f"step {step_number}: " if step_number is not None else ""
    raise FloatingPointError(f"{step}{what} ({rows}); training stopped")


class GeometryLog:
    """Alignment and uniformity (Wang & Isola 2020) of each training batch's views 0 and 1, averaged
    between two logs."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {"alignment": [], "uniformity": []}

    @torch.no_grad()
    def record(self, views: Tensor) -> None:
        """Record (V, B, d) views: alignment of anchors to positives, uniformity of the anchors."""
        if views.shape[0] < 2 or views.shape[1] < 2:
            return
        anchors, positives = views[0].detach(), views[1].detach()
        self.values["alignment"].append(alignment(anchors, positives).item())
        self.values["uniformity"].append(uniformity(anchors).item())

    def pop_means(self) -> dict[str, float]:
        """The mean of each measure recorded since the last call (rounded to 4 digits), then forget them."""
        means = {name: round(sum(values) / len(values), 4) for name, values in self.values.items() if values}
        for values in self.values.values():
            values.clear()
        return means
