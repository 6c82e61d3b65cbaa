"""Training: `ContrastiveTrainer` (a `transformers.Trainer`), its arguments, and `ContrastiveStep`, the step
it runs, usable in a plain PyTorch loop."""

from contrasent.training.arguments import ContrastiveTrainingArguments
from contrasent.training.step import ContrastiveStep
from contrasent.training.trainer import ContrastiveTrainer

__all__ = ["ContrastiveStep", "ContrastiveTrainer", "ContrastiveTrainingArguments"]
