"""Training data: file readers, the column conventions that choose the training mode, the collator."""

from contrasent.data.collator import ContrastiveCollator
from contrasent.data.columns import ColumnLayout, infer_layout
from contrasent.data.files import load_training_file

__all__ = ["ColumnLayout", "ContrastiveCollator", "infer_layout", "load_training_file"]
