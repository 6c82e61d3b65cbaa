"""What a trained model's card says about its training: objective and hyperparameters, from the run's settings."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from contrasent.data.columns import ColumnLayout
from contrasent.losses.matryoshka import Matryoshka
from contrasent.models.encoder import SentenceEncoder
from contrasent.training.arguments import ContrastiveTrainingArguments


def describe_training(
    encoder: SentenceEncoder,
    loss: nn.Module | None,
    layout: ColumnLayout | None,
    args: ContrastiveTrainingArguments,
    global_step: int,
    epoch: float | None = None,
) -> None:
    """Record the objective and hyperparameters in ``encoder.card_data`` (the saved model card shows them).

    What a reader needs to reproduce the run and nothing internal: the loss and its settings (its
    constructor's arguments, e.g. ``temperature``), the batch size (per device and in all), the learning
    rate and warmup, the steps and epochs trained (numbers), the training length, precision, optimizer and
    seed, and the large-batch options that were on.
    """
    card = encoder.card_data
    if isinstance(loss, Matryoshka):  # named by the loss it sums; its dimensions are hyperparameters below
        loss = loss.loss
    if layout is not None:
        columns = ", ".join(layout.text_columns)
        card.objective = f"{type(loss).__name__} on {layout.mode} data (columns: {columns})"
    world = max(args.world_size, 1)
    values: dict[str, Any] = {
        "loss": type(loss).__name__ if loss is not None else None,
        **loss_settings(loss),
        "batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "learning_rate": args.learning_rate,
        "warmup_steps": int(args.warmup_steps) if args.warmup_steps == int(args.warmup_steps) else args.warmup_steps,
        "weight_decay": args.weight_decay,
        "steps": global_step,
        "epochs": round(epoch, 2) if epoch is not None else None,
        "training_max_seq_length": args.max_seq_length,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "seed": args.seed,
        "mini_batch_size": args.mini_batch_size,
        "mini_batch_tokens": args.mini_batch_tokens,
        "queue_size": args.queue_size or None,
        "momentum": args.momentum,
        "batch_sampler": args.batch_sampler if args.batch_sampler != "random" else None,
        "matryoshka_dims": args.matryoshka_dims,
        "matryoshka_weights": args.matryoshka_weights,
    }
    card.hyperparameters.update({name: value for name, value in values.items() if value is not None})


def loss_settings(loss: nn.Module | None) -> dict[str, Any]:
    """The loss's constructor arguments with their current scalar values (``temperature``, ``margin``, ...):
    what the user chose, not ``nn.Module`` internals such as ``training``."""
    if loss is None:
        return {}
    parameters = inspect.signature(type(loss).__init__).parameters
    return {name: getattr(loss, name) for name in parameters
            if name != "self" and isinstance(getattr(loss, name, None), (int, float, str, bool))}
