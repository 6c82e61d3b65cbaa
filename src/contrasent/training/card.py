"""What a trained model's card says about its training: objective and hyperparameters, from the run's settings."""

from __future__ import annotations

from torch import nn

from contrasent.data.columns import ColumnLayout
from contrasent.models.encoder import SentenceEncoder
from contrasent.training.arguments import ContrastiveTrainingArguments


def describe_training(
    encoder: SentenceEncoder,
    loss: nn.Module | None,
    layout: ColumnLayout | None,
    args: ContrastiveTrainingArguments,
    global_step: int,
) -> None:
    """Record the objective and hyperparameters in ``encoder.card_data`` (the saved model card shows them).

    The loss's public scalar settings (temperature, margin, ...) join the hyperparameters.
    """
    card = encoder.card_data
    if layout is not None:
        columns = ", ".join(layout.text_columns)
        card.objective = f"{type(loss).__name__} on {layout.mode} data (columns: {columns})"
    card.hyperparameters.update({
        "loss": type(loss).__name__ if loss is not None else None,
        **{name: value for name, value in (vars(loss) if loss is not None else {}).items()
           if not name.startswith("_") and isinstance(value, (int, float, str, bool))},
        "learning_rate": args.learning_rate,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "max_steps": args.max_steps if args.max_steps > 0 else None,
        "num_train_epochs": args.num_train_epochs if args.max_steps <= 0 else None,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "max_seq_length": args.max_seq_length,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "seed": args.seed,
        "global_step": global_step,
    })
