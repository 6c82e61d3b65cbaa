"""contrasent: train, evaluate and serve sentence embeddings with contrastive learning.

Heavy modules (torch, transformers) load on first use of the names below, so ``import contrasent``
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from contrasent import _moved

__version__ = "0.1.0.dev0"

_moved.install()  # the import paths of 0.1 (contrasent.model_io, contrasent.mining, ...) keep working

# public name -> module that defines it
_LAZY = {
    "SentenceEncoder": "contrasent.models.encoder",
    "EncoderConfig": "contrasent.models.config",
    "ContrastiveTrainer": "contrasent.training.trainer",
    "ContrastiveTrainingArguments": "contrasent.training.arguments",
    "SemanticIndex": "contrasent.search.index",
}

__all__ = [
    "ContrastiveTrainer",
    "ContrastiveTrainingArguments",
    "EncoderConfig",
    "SemanticIndex",
    "SentenceEncoder",
    "__version__",
]

if TYPE_CHECKING:
    from contrasent.models.config import EncoderConfig
    from contrasent.models.encoder import SentenceEncoder
    from contrasent.search.index import SemanticIndex
    from contrasent.training.arguments import ContrastiveTrainingArguments
    from contrasent.training.trainer import ContrastiveTrainer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'contrasent' has no attribute {name!r}")
