"""`Batch`: one training step's inputs, as the collator builds them and the step reads them.

A batch of B dataset rows with V views (text columns; two dropout views of one text in unsupervised
mode) holds N = V·B texts. They are encoded in length-sorted ``chunks`` (one forward pass each);
``cat(chunk embeddings)[restore]`` lists them view-major: view 0 of rows 0..B-1, then view 1, ...

A row short of hard negatives (``None`` in a negative column, as mining leaves it) has no text in those
slots: ``negative_valid`` marks them, the chunks hold only the texts that exist, and ``restore`` lists
those, view-major, skipping the missing slots (:meth:`Batch.present` says which they are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

# The text id of a missing hard negative. Its candidate column is always masked and never enqueued, so it
# cannot hide a real text even if a text's hash were equal to it.
MISSING_TEXT_ID = 0


@dataclass(frozen=True)
class Batch:
    """The inputs of one contrastive training step.

    Attributes:
        chunks: encoder inputs, one dict per forward pass (``model(**chunk)``): padded ``input_ids`` /
            ``attention_mask`` (n, T) int64, or padding-free ``input_ids`` (1, Σ L_i) and
            ``sequence_lengths`` (n,); texts sorted by token count.
        restore: (n,) int64: ``cat(chunk outputs)[restore]`` is in view-major order; n = N less the
            missing hard negatives.
        num_views: V.
        text_ids: (V, B) int64 stable ids of the texts (:mod:`contrasent.data.text_ids`), for
            duplicate (false-negative) masks.
        class_labels: (B,) int64 class labels, or 0/1 similarity labels for pairs; ``None`` without a
            label column.
        scores: (B,) float32 similarity scores; ``None`` without a score column.
        row_ids: (B,) int64 dataset row numbers, to name the rows of a failing step; ``None`` if unknown.
        negative_valid: (B, k) bool, k = V − 2: False where row i has no text for hard negative j (the
            slot's text id is :data:`MISSING_TEXT_ID`); ``None`` when every text is present.

    ``len(batch)`` is B. ``name in batch`` says whether a field of that name holds a value: this is how
    ``transformers.Trainer`` probes a batch (``"labels"`` before counting label tokens, ``"input_ids"``
    for FLOPs and token counts), so it finds what it finds in a dict without those keys.
    """

    chunks: list[dict[str, Tensor]]
    restore: Tensor
    num_views: int
    text_ids: Tensor
    class_labels: Tensor | None = None
    scores: Tensor | None = None
    row_ids: Tensor | None = None
    negative_valid: Tensor | None = None

    def __len__(self) -> int:
        return int(self.text_ids.shape[1])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.__dataclass_fields__ and getattr(self, name) is not None

    def present(self) -> Tensor | None:
        """(V, B) bool: which texts exist (anchors and positives always do); ``None`` when all do."""
        if self.negative_valid is None:
            return None
        always = torch.ones(2, len(self), dtype=torch.bool, device=self.negative_valid.device)
        return torch.cat([always, self.negative_valid.T])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device`` (what accelerate's ``send_to_device`` calls)."""
        return self._map(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (what a ``DataLoader`` with ``pin_memory=True`` calls)."""
        return self._map(Tensor.pin_memory)

    def _map(self, function: Callable[[Tensor], Tensor]) -> Batch:
        def apply(value: Any) -> Any:
            return function(value) if isinstance(value, Tensor) else value

        return replace(
            self,
            chunks=[{name: apply(tensor) for name, tensor in chunk.items()} for chunk in self.chunks],
            restore=apply(self.restore), text_ids=apply(self.text_ids), class_labels=apply(self.class_labels),
            scores=apply(self.scores), row_ids=apply(self.row_ids), negative_valid=apply(self.negative_valid),
        )
