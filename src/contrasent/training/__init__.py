"""Training: `ContrastiveTrainer` (a `transformers.Trainer`) and its arguments."""

from contrasent.training.arguments import ContrastiveTrainingArguments
from contrasent.training.trainer import ContrastiveTrainer

__all__ = ["ContrastiveTrainer", "ContrastiveTrainingArguments"]
