"""Contrastive and metric-learning objectives: pure functions of embeddings (and labels or scores).

Every loss is an ``nn.Module`` returning a scalar. It declares what it takes in two class attributes,
which is all the trainer's step (:mod:`contrasent.training.step`) reads to call it:

``input_format`` names the positional call:

- ``"anchor_positive"``: ``loss(anchors, positives, negatives=None)`` (InfoNCE, NPair, NEG, NCE);
- ``"views"``: ``loss(view1, view2)`` (NTXent);
- ``"pair_label"``: ``loss(a, b, label)`` (MarginContrastive);
- ``"labels"``: ``loss(embeddings, labels)`` (Triplet, LiftedStructure, SupCon, SoftNearestNeighbors);
- ``"scored_pairs"``: ``loss(a, b, score)`` (CoSENT).

``optional_inputs`` (default: none) names the keyword inputs it accepts besides, for
``"anchor_positive"`` losses (InfoNCE takes both):

- ``"mask"``: (B, C) bool, True removes candidate c from row i's softmax; columns are the B positives,
  then the hard negatives row by row, then the extra candidates (false-negative masks);
- ``"extra_candidates"``: (Q, d) negatives shared by every row (a MoCo queue).

A new loss needs only these two attributes to be trained. ``get_loss("supcon", temperature=0.07)``
builds one by name. ``Matryoshka(loss, dims)`` wraps any of them: the sum of the loss on nested prefixes of
the embeddings, with the wrapped loss's ``input_format`` and ``optional_inputs``.
"""

from __future__ import annotations

from torch import nn

from .infonce import InfoNCE, NPair, NTXent
from .margin import LiftedStructure, MarginContrastive, Triplet
from .matryoshka import Matryoshka
from .sampling import NCE, NEG
from .scored import CoSENT
from .supervised import SoftNearestNeighbors, SupCon

LOSSES: dict[str, type[nn.Module]] = {
    "infonce": InfoNCE,
    "ntxent": NTXent,
    "neg": NEG,
    "nce": NCE,
    "margin_contrastive": MarginContrastive,
    "triplet": Triplet,
    "npair": NPair,
    "soft_nearest_neighbors": SoftNearestNeighbors,
    "lifted_structure": LiftedStructure,
    "supcon": SupCon,
    "cosent": CoSENT,
}


def get_loss(name: str, **kwargs: object) -> nn.Module:
    """The loss registered under ``name`` (snake case, see ``LOSSES``), built with ``kwargs``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    return LOSSES[name](**kwargs)


__all__ = [
    "LOSSES",
    "NCE",
    "NEG",
    "CoSENT",
    "InfoNCE",
    "LiftedStructure",
    "MarginContrastive",
    "Matryoshka",
    "NPair",
    "NTXent",
    "SoftNearestNeighbors",
    "SupCon",
    "Triplet",
    "get_loss",
]
