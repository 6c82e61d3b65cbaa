"""What the trainer builds from its arguments and data before training: the loss (checked against the data
layout), the step, the batch sampler, each text column's prompt; and the setup errors it refuses to start with."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from contrasent.data.columns import DEFAULT_LOSS, SUPPORTED_FORMATS, ColumnLayout
from contrasent.losses import LOSSES, get_loss
from contrasent.losses.matryoshka import Matryoshka
from contrasent.models.backbone_limits import position_limit
from contrasent.models.dropout import set_dropout
from contrasent.models.encoder import SentenceEncoder
from contrasent.models.prompts import prompt_token_count
from contrasent.training.arguments import ContrastiveTrainingArguments
from contrasent.training.distributed import world_size
from contrasent.training.loss_inputs import (
    CANDIDATE_FORMAT,
    CANDIDATE_INPUTS,
    FalseNegativeMasking,
    leaves_out_missing_negatives,
    optional_inputs,
)
from contrasent.training.queue import MomentumEncoder, NegativeQueue
from contrasent.training.step import ContrastiveStep

logger = logging.getLogger(__name__)


def build_loss(args: ContrastiveTrainingArguments, layout: ColumnLayout) -> nn.Module:
    """The loss named by ``args.loss`` (default: the layout's), with the arguments it accepts, summed over
    ``args.matryoshka_dims`` (:class:`~contrasent.losses.matryoshka.Matryoshka`) when given."""
    name = args.loss or DEFAULT_LOSS[layout.mode]
    loss_class_kwargs = args.parsed_loss_kwargs()
    if name not in LOSSES:
        return get_loss(name)  # raises the ValueError listing valid names
    accepted = inspect.signature(LOSSES[name]).parameters
    if args.temperature is not None and "temperature" in accepted:
        loss_class_kwargs.setdefault("temperature", args.temperature)
    if args.hard_negative_weight and "hard_negative_weight" in accepted:
        loss_class_kwargs.setdefault("hard_negative_weight", args.hard_negative_weight)
    loss = get_loss(name, **loss_class_kwargs)
    if args.matryoshka_dims is not None:
        loss = Matryoshka(loss, args.matryoshka_dims, args.matryoshka_weights)
    return loss


def check_matryoshka_dims(model: nn.Module, args: ContrastiveTrainingArguments) -> None:
    """Refuse a ``--matryoshka_dims`` beyond the model's embedding size; warn when the full size is not
    among them (the full embeddings, which ``encode`` returns by default, would then not be trained as
    such; sentence-transformers warns alike)."""
    size = getattr(model, "embedding_dim", None)
    if args.matryoshka_dims is None or size is None:
        return
    too_large = [dim for dim in args.matryoshka_dims if dim > size]
    if too_large:
        raise ValueError(f"--matryoshka_dims {too_large} is more than the model's {size}-dimensional embeddings")
    if size not in args.matryoshka_dims:
        logger.warning("--matryoshka_dims %s leaves out the model's full %d dimensions: the full embeddings are "
                       "not trained as such; add %d to train them", args.matryoshka_dims, size, size)


def check_loss_fits_layout(loss: nn.Module, layout: ColumnLayout) -> None:
    """Raise a ``ValueError`` when the data layout cannot feed the loss's declared inputs."""
    input_format = getattr(loss, "input_format", None)
    if input_format not in SUPPORTED_FORMATS[layout.mode]:
        raise ValueError(
            f"loss {type(loss).__name__} takes {input_format!r} inputs, which {layout.mode!r} data "
            f"(columns {list(layout.text_columns)}) cannot provide; losses for this layout take "
            f"{', '.join(SUPPORTED_FORMATS[layout.mode])} inputs"
        )
    if input_format == "pair_label" and layout.mode == "pairs" and len(layout.text_columns) < 3:
        raise ValueError(f"loss {type(loss).__name__} needs dissimilar pairs: give a hard-negative column "
                         "(anchor, positive, negative) or a 0/1 label column")
    if input_format == "views" and layout.num_views != 2:
        raise ValueError(f"loss {type(loss).__name__} takes exactly 2 views; the data has {layout.num_views}")
    check_optional_inputs(loss)


def check_short_rows_fit_loss(dataset: Any, layout: ColumnLayout, loss: nn.Module) -> None:
    """Rows short of hard negatives (``None``, as mining leaves them) train only with a loss that ignores or
    masks out the missing ones (:func:`~contrasent.training.loss_inputs.leaves_out_missing_negatives`).

    Raises:
        ValueError: naming the first column holding ``None`` and how many rows lack that negative.
    """
    if leaves_out_missing_negatives(loss):
        return
    for column in layout.hard_negative_columns:
        short = sum(text is None for text in dataset[column])
        if short:
            raise ValueError(
                f"column {column!r}: {short} of {len(dataset)} rows have no hard negative (None, as "
                f"mine_hard_negatives leaves rows short of negatives); loss {type(loss).__name__} takes hard "
                "negatives but cannot leave missing ones out: use a loss that takes a mask (infonce), or drop "
                f"those rows (dataset.filter(lambda row: row[{column!r}] is not None))"
            )


def check_optional_inputs(loss: nn.Module) -> None:
    """Raise a ``ValueError`` when a loss declares optional inputs the step cannot build for it."""
    declared = optional_inputs(loss)
    unknown = declared - CANDIDATE_INPUTS
    if unknown:
        raise ValueError(f"loss {type(loss).__name__} declares optional inputs {sorted(unknown)}; the step "
                         f"builds only {sorted(CANDIDATE_INPUTS)}")
    if declared and loss.input_format != CANDIDATE_FORMAT:
        raise ValueError(f"loss {type(loss).__name__} declares {sorted(declared)}, which the step builds for "
                         f"{CANDIDATE_FORMAT!r} losses only; it takes {loss.input_format!r} inputs")


def column_prompts(args: ContrastiveTrainingArguments, layout: ColumnLayout) -> dict[str, str]:
    """The prompt of each text column that ``args.prompts`` gives one (one prompt: every text column).

    Raises:
        ValueError: ``--prompts`` names a column that is not one of the data's text columns (they are listed).
    """
    prompts = args.parsed_prompts()
    if prompts is None:
        return {}
    if isinstance(prompts, str):
        return dict.fromkeys(layout.text_columns, prompts)
    unknown = [column for column in prompts if column not in layout.text_columns]
    if unknown:
        raise ValueError(f"--prompts names column(s) {unknown} that are not text columns of the training data; "
                         f"its text columns are {list(layout.text_columns)}")
    return dict(prompts)


def check_prompts_fit(prompts: dict[str, str], tokenizer: Any, max_length: int) -> None:
    """Refuse a prompt that leaves no room for text in ``max_length`` tokens: truncation keeps the prompt
    and cuts the text, so every text of its column would be trained as the prompt alone."""
    for column, prompt in prompts.items():
        tokens = prompt_token_count(tokenizer, prompt)
        if tokens >= max_length - 1:  # the text's first token and the closing special token need room too
            raise ValueError(f"--prompts: the prompt of column {column!r} takes {tokens} tokens, which leaves no "
                             f"room for its texts in --max_seq_length {max_length}")


def caches_gradients(args: ContrastiveTrainingArguments) -> bool:
    """Whether training runs GradCache: ``mini_batch_size`` or ``mini_batch_tokens`` is set."""
    return args.mini_batch_size is not None or args.mini_batch_tokens is not None


def gathers(args: ContrastiveTrainingArguments) -> bool:
    """Whether embeddings are gathered across processes: ``gather_across_devices``, by default on when more
    than one process runs."""
    return world_size() > 1 if args.gather_across_devices is None else args.gather_across_devices


def build_step(
    model: nn.Module, args: ContrastiveTrainingArguments, loss: nn.Module,
    row_names: Callable[[Sequence[int]], str] | None = None,
) -> ContrastiveStep:
    """The :class:`~contrasent.training.step.ContrastiveStep` that ``args`` describe, with the negative queue
    and momentum encoder they ask for (refused for a loss that cannot use them); ``row_names`` names the
    rows of a failing step."""
    queue = momentum_encoder = None
    if args.queue_size:
        if "extra_candidates" not in optional_inputs(loss):
            raise ValueError(f"queue_size needs a loss that accepts extra_candidates, such as InfoNCE; "
                             f"{type(loss).__name__} does not")
        queue = NegativeQueue(args.queue_size)
    if args.momentum is not None:
        if getattr(loss, "input_format", None) != "anchor_positive":
            raise ValueError(f"momentum needs an 'anchor_positive' loss (anchors from the encoder, the other "
                             f"views from the momentum encoder), such as InfoNCE; {type(loss).__name__} takes "
                             f"{getattr(loss, 'input_format', None)!r} inputs")
        momentum_encoder = MomentumEncoder(model, args.momentum)
    masking = FalseNegativeMasking(duplicates=args.mask_duplicates, margin=args.false_negative_margin,
                                   relative_margin=args.false_negative_relative_margin)
    return ContrastiveStep(loss, gather=gathers(args), masking=masking, queue=queue,
                           momentum_encoder=momentum_encoder, cache_gradients=caches_gradients(args),
                           row_names=row_names)


def check_batch_fits(dataset: Any, args: ContrastiveTrainingArguments, name: str = "train_dataset") -> None:
    """In-batch negatives need a full batch: a dataset smaller than one global batch is a setup error."""
    global_batch = args.per_device_train_batch_size * max(args.world_size, 1)
    if len(dataset) < global_batch:
        raise ValueError(
            f"{name} has {len(dataset)} rows, fewer than one batch (per_device_train_batch_size="
            f"{args.per_device_train_batch_size} x {max(args.world_size, 1)} process(es) = {global_batch}); "
            "lower the batch size or add data"
        )


def check_batch_has_negatives(loss: nn.Module, layout: ColumnLayout, args: ContrastiveTrainingArguments) -> None:
    """A global batch of one row leaves a loss that contrasts the rows of a batch without negatives: its
    loss and gradient are 0 at every step. Refused, unless hard-negative columns, 0/1 pair labels or a
    negative queue provide them."""
    processes = max(args.world_size, 1)
    input_format = getattr(loss, "input_format", None)
    hard_negatives = layout.mode == "pairs" and len(layout.text_columns) > 2 and input_format == "anchor_positive"
    if args.per_device_train_batch_size * processes > 1 or args.queue_size or hard_negatives \
            or input_format == "pair_label":
        return
    raise ValueError(f"--per_device_train_batch_size 1 x {processes} process(es) puts one row in a batch: "
                     f"{type(loss).__name__} then has no negatives (the other rows of a batch) and its loss is 0; "
                     "use a batch of 2 or more rows, or --queue_size")


def build_batch_sampler(args: ContrastiveTrainingArguments, dataset: Any, layout: ColumnLayout | None) -> Any:
    """The batch sampler named by ``args.batch_sampler`` over ``dataset`` (per-device batch size, the
    world size as replicas, ``args.seed``, ``args.dataloader_drop_last``)."""
    from contrasent.data.samplers import GroupByLabelBatchSampler, NoDuplicatesBatchSampler

    common = {"num_replicas": world_size(), "drop_last": args.dataloader_drop_last, "seed": args.seed}
    if args.batch_sampler == "no_duplicates":
        columns = list(layout.text_columns) if layout is not None else None
        return NoDuplicatesBatchSampler(dataset, args.per_device_train_batch_size, columns=columns, **common)
    if layout is None or layout.label_column is None:
        raise ValueError("batch_sampler='group_by_label' needs a label column in the training data")
    return GroupByLabelBatchSampler(
        dataset[layout.label_column], args.per_device_train_batch_size,
        samples_per_label=args.samples_per_label, **common,
    )


def freeze_unused_backbone_pooler(model: SentenceEncoder) -> None:
    """BERT-style backbones carry a pooler (dense + tanh on [CLS]) whose output our pooling never reads.

    Its parameters get no gradient, which DistributedDataParallel treats as an error; they are frozen
    (``requires_grad=False``) so DDP ignores them. They are still saved with the backbone.
    """
    pooler = getattr(model.backbone, "pooler", None)
    if isinstance(pooler, nn.Module):
        pooler.requires_grad_(False)


def apply_dropout(model: nn.Module, rate: float) -> None:
    """Train ``model`` with dropout ``rate`` (``--dropout``) everywhere it has dropout
    (:func:`~contrasent.models.dropout.set_dropout`); warn when it has none to set."""
    if set_dropout(model, rate) == 0 and rate > 0:
        logger.warning("--dropout %g: %s has no dropout to set; it trains without dropout", rate, type(model).__name__)


def training_length(model: nn.Module, args: ContrastiveTrainingArguments) -> int:
    """``args.max_seq_length``, capped (with a warning) at the number of positions of the model's backbone
    (:func:`~contrasent.models.backbone_limits.position_limit`): longer sequences could not be embedded."""
    limit = position_limit(getattr(model, "backbone", None))
    if limit is not None and args.max_seq_length > limit:
        logger.warning("--max_seq_length %d is more than the model's %d positions: training truncates texts at %d "
                       "tokens", args.max_seq_length, limit, limit)
        return limit
    return args.max_seq_length
