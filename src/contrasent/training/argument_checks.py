"""Check every numeric training argument when the arguments are parsed, naming the flag and what it takes.

``transformers.TrainingArguments`` accepts most nonsense silently (``--gradient_accumulation_steps 0``
ends in a ``ZeroDivisionError`` at the first step, ``--per_device_train_batch_size 0`` in a torch error
after the model has loaded, ``--max_steps 0`` trains anyway, ``--temperature inf`` or ``nan`` trains on
garbage). :func:`check_training_arguments` refuses each of these before anything is loaded, with a
``ValueError`` that reads ``--<flag> must be <what it takes>, got <value>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Rule = tuple[Callable[[Any], bool], str]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _steps(value: Any) -> bool:
    """transformers' convention for logging/eval/save steps: an integer ≥ 1, or a ratio of the total in (0, 1)."""
    return _finite(value) and (0 < value < 1 or (value >= 1 and float(value).is_integer()))


POSITIVE_INTEGER: Rule = (lambda v: _integer(v) and v > 0, "a positive integer")
NON_NEGATIVE_INTEGER: Rule = (lambda v: _integer(v) and v >= 0, "an integer >= 0")
POSITIVE: Rule = (lambda v: _finite(v) and v > 0, "a finite number > 0")
NON_NEGATIVE: Rule = (lambda v: _finite(v) and v >= 0, "a finite number >= 0")
FINITE: Rule = (_finite, "a finite number")
FRACTION: Rule = (lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)")
STEPS: Rule = (_steps, "a positive integer, or a fraction of the total steps in (0, 1)")
SEED: Rule = (lambda v: _integer(v) and 0 <= v < 2**32, "an integer in [0, 2**32)")

# Each numeric argument and what it takes; ``None`` is accepted wherever the argument's default is ``None``.
RULES: dict[str, Rule] = {
    "per_device_train_batch_size": POSITIVE_INTEGER,
    "per_device_eval_batch_size": POSITIVE_INTEGER,
    "gradient_accumulation_steps": POSITIVE_INTEGER,
    "max_steps": (lambda v: _integer(v) and (v > 0 or v == -1),
                  "a positive integer, or -1 to train for --num_train_epochs"),
    "num_train_epochs": POSITIVE,
    "learning_rate": POSITIVE,
    "warmup_steps": (lambda v: v == 0 or _steps(v), "0, an integer number of steps, or a fraction in (0, 1)"),
    "weight_decay": NON_NEGATIVE,
    "adam_beta1": FRACTION,
    "adam_beta2": FRACTION,
    "adam_epsilon": POSITIVE,
    "max_grad_norm": NON_NEGATIVE,
    "label_smoothing_factor": FRACTION,
    "dropout": FRACTION,
    "neftune_noise_alpha": POSITIVE,
    "logging_steps": STEPS,
    "eval_steps": STEPS,
    "save_steps": STEPS,
    "eval_delay": NON_NEGATIVE,
    "eval_accumulation_steps": POSITIVE_INTEGER,
    "save_total_limit": POSITIVE_INTEGER,
    "seed": SEED,
    "data_seed": SEED,
    "dataloader_num_workers": NON_NEGATIVE_INTEGER,
    "dataloader_prefetch_factor": POSITIVE_INTEGER,
    "torch_empty_cache_steps": POSITIVE_INTEGER,
    "ddp_timeout": POSITIVE_INTEGER,
    "ddp_bucket_cap_mb": POSITIVE_INTEGER,
    # the contrastive arguments
    "temperature": POSITIVE,
    "hard_negative_weight": FINITE,
    "max_seq_length": POSITIVE_INTEGER,
    "mini_batch_size": POSITIVE_INTEGER,
    "mini_batch_tokens": POSITIVE_INTEGER,
    "samples_per_label": (lambda v: _integer(v) and v >= 2, "an integer >= 2"),
    "queue_size": NON_NEGATIVE_INTEGER,
    "momentum": FRACTION,
    "false_negative_margin": NON_NEGATIVE,
    "false_negative_relative_margin": FRACTION,
}


def check_training_arguments(args: Any) -> None:
    """Raise a ``ValueError`` naming the first argument of ``args`` that cannot be right.

    Numbers are checked against :data:`RULES`; then the arguments that only make sense together:
    ``score_range``, ``fp16`` with ``bf16``, ``group_by_label`` batches of whole label groups, and the
    Matryoshka dimensions with their weights.
    """
    for name, (accepts, expected) in RULES.items():
        value = getattr(args, name, None)
        if value is None and _optional(args, name):
            continue
        if not accepts(value):
            raise ValueError(f"--{name} must be {expected}, got {value!r}")
    score_range = args.score_range
    if score_range is not None and (
        len(score_range) != 2 or not all(map(_finite, score_range)) or score_range[0] >= score_range[1]
    ):
        raise ValueError(f"--score_range must be two finite numbers low < high, got {score_range}")
    for fp16, bf16 in (("fp16", "bf16"), ("fp16_full_eval", "bf16_full_eval")):
        if getattr(args, fp16, False) and getattr(args, bf16, False):
            raise ValueError(f"--{fp16} and --{bf16} cannot both be on: choose one half-precision format")
    if args.batch_sampler == "group_by_label" and args.per_device_train_batch_size % args.samples_per_label:
        raise ValueError(f"--per_device_train_batch_size ({args.per_device_train_batch_size}) must be a multiple of "
                         f"--samples_per_label ({args.samples_per_label}) with --batch_sampler group_by_label")
    check_matryoshka_arguments(args.matryoshka_dims, args.matryoshka_weights)


def check_matryoshka_arguments(dims: list[int] | None, weights: list[float] | None) -> None:
    """``--matryoshka_dims``: distinct positive integers (any order); ``--matryoshka_weights``: with them, one
    finite weight > 0 each. (That each dimension fits the model's embeddings is checked with the model.)"""
    if dims is not None and (not dims or not all(_integer(dim) and dim > 0 for dim in dims)
                             or len(set(dims)) != len(dims)):
        raise ValueError(f"--matryoshka_dims must be distinct positive integers, got {dims}")
    if weights is None:
        return
    if dims is None:
        raise ValueError("--matryoshka_weights needs --matryoshka_dims (one weight per dimension)")
    if len(weights) != len(dims) or not all(_finite(weight) and weight > 0 for weight in weights):
        raise ValueError(f"--matryoshka_weights must be {len(dims)} finite numbers > 0 (one per --matryoshka_dims), "
                         f"got {weights}")


def _optional(args: Any, name: str) -> bool:
    field = type(args).__dataclass_fields__.get(name)
    return field is not None and field.default is None
