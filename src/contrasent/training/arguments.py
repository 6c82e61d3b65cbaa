"""`ContrastiveTrainingArguments`: `transformers.TrainingArguments` plus what contrastive training needs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from contrasent.training.argument_checks import check_training_arguments

BATCH_SAMPLERS = ("random", "no_duplicates", "group_by_label")


@dataclass
class ContrastiveTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the settings of the contrastive objective.

    Every `transformers.TrainingArguments` flag keeps its name and meaning. Added:

    * ``loss``: objective name from :func:`contrasent.losses.get_loss`; by default chosen by the data
      layout (InfoNCE for texts / pairs / triplets, SupCon for (text, label), CoSENT for scored pairs,
      MarginContrastive for (text_a, text_b, 0/1 label)).
    * ``temperature``: τ of the losses that have one (InfoNCE, NTXent, SupCon, ...); ``None`` keeps
      the loss's default (InfoNCE 0.05 as in SimCSE, NTXent 0.5, SupCon 0.1).
    * ``hard_negative_weight``: SimCSE's log-weight α on each row's own hard negative (InfoNCE).
    * ``loss_kwargs``: any other constructor argument of the loss, as a JSON object.
    * ``max_seq_length``: texts are truncated to this many tokens.
    * ``mask_duplicates``: for a loss that accepts a ``mask`` (InfoNCE), candidates whose text equals the
      anchor's or its positive's are not used as negatives (duplicates in a batch are false negatives).
    * ``false_negative_margin`` / ``false_negative_relative_margin``: for the same losses, also mask
      candidates scoring above the positive minus this margin (absolute, or relative to the positive's
      score) as suspected false negatives (GISTEmbed / NV-Retriever); ``None`` (default) = off.
    * ``gather_across_devices``: with several processes, gather every rank's embeddings (with gradients)
      so each anchor sees the global batch; ``None`` (default) = on when the world size is > 1.
    * ``mini_batch_size``: gradient caching (GradCache): encode this many texts per forward pass and
      backpropagate through the loss of the whole batch in two passes; memory then grows with
      ``mini_batch_size``, not with the batch. ``None`` (default) = off.
    * ``mini_batch_tokens``: gradient caching with chunks of at most this many padded tokens (a chunk's
      longest text × its texts; a text longer than the budget is a chunk of its own), so that a chunk of
      short texts holds many and one of long texts few (:mod:`contrasent.data.chunking`). With
      ``mini_batch_size`` too, both limits apply. ``None`` (default) = chunks by ``mini_batch_size`` only.
    * ``padding_free``: encode the texts of a step back to back in one unpadded row, attention per text
      (:mod:`contrasent.models.padding_free`; TRL's name for the same idea): linear layers then process no
      padding. On (default) for encoders that give the same embeddings this way (checked when training
      starts); the others, and ``False``, use padded length-sorted chunks.
    * ``batch_sampler``: ``"random"`` (default, `Trainer`'s own), ``"no_duplicates"`` (no text twice in a
      global batch) or ``"group_by_label"`` (``samples_per_label`` examples of each label in a batch).
    * ``queue_size``: a loss that accepts ``extra_candidates`` (InfoNCE) also scores each anchor against
      this many embeddings of past batches (MoCo-style FIFO memory, no gradient); 0 (default) = off.
      ``momentum``: encode positives, hard negatives and queue entries of an ``anchor_positive`` loss with
      an exponential moving average of the encoder (MoCo), updated as ``θ_m ← m·θ_m + (1 − m)·θ`` after
      every optimizer step; ``None`` (default) = no momentum encoder.
    * ``matryoshka_dims``: train nested embeddings (Matryoshka, :class:`~contrasent.losses.matryoshka.Matryoshka`):
      the loss becomes the sum over these dimensions of the loss on the first ``m`` components of every
      embedding, re-normalised, e.g. ``768 512 256 128 64``; ``matryoshka_weights`` weighs each term, in
      the same order (default all 1). ``None`` (default) = off.
    * ``dropout``: hidden and attention dropout of the backbone during training, SimCSE's augmentation
      (its paper's Table 1 varies it: 0.1 is best for BERT, 0 collapses the two views into one); set on
      every dropout of the model and in its saved configuration (:mod:`contrasent.models.dropout`).
      ``None`` (default) keeps the model's own (BERT and all-MiniLM-L6-v2: 0.1).
    * ``prompts``: strings prepended to the texts of each column before tokenizing, as
      sentence-transformers' trainer does: a JSON object of column names to prompts
      (``'{"anchor": "query: ", "positive": "passage: "}'``; a column it leaves out gets none) or, when the
      value does not start with ``{``, one prompt for every text column. Truncation cuts the end of the
      text, never the prompt; with the model's ``include_prompt=False`` the prompt's tokens are left out
      of the pooling, as in ``encode``. ``None`` (default) = no prompts. From Python, a dict works too.

    Every numeric argument is checked when the arguments are parsed
    (:mod:`contrasent.training.argument_checks`): a value that cannot be right raises a ``ValueError``
    naming the flag. A ``max_seq_length`` beyond the model's positions is capped, with a warning, when
    the trainer is built.

    ``remove_unused_columns`` defaults to ``False``: the collator tokenizes raw text columns itself.
    ``optim`` defaults to ``adamw_torch_fused``: the AdamW update of ``adamw_torch`` in one fused kernel
    (CPU and GPU), much faster on CPU.
    """

    loss: str | None = field(default=None, metadata={"help": "Objective (infonce, ntxent, supcon, cosent, ...); "
                                                             "default: chosen by the data layout."})
    temperature: float | None = field(default=None, metadata={"help": "Temperature τ dividing similarities; "
                                                                      "default: the loss's own (InfoNCE 0.05)."})
    hard_negative_weight: float = field(default=0.0, metadata={"help": "SimCSE's log-weight α on hard negatives."})
    loss_kwargs: str | None = field(default=None, metadata={"help": "Other loss arguments, as a JSON object."})
    max_seq_length: int = field(default=32, metadata={"help": "Truncate texts to this many tokens."})
    mask_duplicates: bool = field(default=True, metadata={"help": "Do not use duplicate texts as negatives."})
    score_range: list[float] | None = field(default=None, metadata={
        "help": "Declared (low, high) range of a score column; a score outside it is refused before training."})
    false_negative_margin: float | None = field(default=None, metadata={
        "help": "Mask in-batch candidates scoring above s(anchor, positive) - margin (InfoNCE); default off."})
    false_negative_relative_margin: float | None = field(default=None, metadata={
        "help": "Mask candidates scoring above s(anchor, positive) * (1 - margin) (InfoNCE); default off."})
    gather_across_devices: bool | None = field(default=None, metadata={
        "help": "Use every process's batch as negatives (default: on when several processes run)."})
    mini_batch_size: int | None = field(default=None, metadata={
        "help": "Gradient caching: texts per forward pass (default: off, the whole batch at once)."})
    mini_batch_tokens: int | None = field(default=None, metadata={
        "help": "Gradient caching: at most this many padded tokens per forward pass, e.g. 8192 (default: off)."})
    padding_free: bool = field(default=True, metadata={
        "help": "Encode the texts of a step without padding, when the encoder supports it (default: on)."})
    batch_sampler: str = field(default="random", metadata={
        "help": "random (default), no_duplicates or group_by_label.",
        "choices": ["random", "no_duplicates", "group_by_label"]})
    samples_per_label: int = field(default=2, metadata={"help": "Examples per label and batch (group_by_label)."})
    queue_size: int = field(default=0, metadata={"help": "Past embeddings kept as extra InfoNCE negatives."})
    momentum: float | None = field(default=None, metadata={
        "help": "MoCo momentum encoder for positives/negatives/queue, e.g. 0.999 (default: none)."})
    matryoshka_dims: list[int] | None = field(default=None, metadata={
        "help": "Matryoshka: also train the first m dimensions of the embeddings for each m, e.g. 384 256 128 64 "
                "(default: off)."})
    matryoshka_weights: list[float] | None = field(default=None, metadata={
        "help": "Matryoshka: the weight of each --matryoshka_dims term, in the same order (default: all 1)."})
    dropout: float | None = field(default=None, metadata={
        "help": "Hidden and attention dropout of the backbone while training, in [0, 1) (default: the model's own)."})
    prompts: str | None = field(default=None, metadata={
        "help": "Prompts prepended to each column's texts: a JSON object of column names to prompts, e.g. "
                "'{\"anchor\": \"query: \", \"positive\": \"passage: \"}', or one prompt for every column "
                "(default: none)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collator reads raw text."})
    # The same AdamW update in one fused kernel: on CPU the default per-tensor loop spends ~3x longer per step.
    optim: str = field(default="adamw_torch_fused", metadata={"help": "Optimizer (transformers' names)."})

    def __post_init__(self) -> None:
        # before transformers' own checks: several of its errors (or none) would hide the flag at fault
        if self.batch_sampler not in BATCH_SAMPLERS:
            raise ValueError(f"--batch_sampler must be one of {', '.join(BATCH_SAMPLERS)}, got {self.batch_sampler!r}")
        check_training_arguments(self)
        self.parsed_loss_kwargs()  # fail at parse time, not at step 1
        self.parsed_prompts()
        super().__post_init__()

    def parsed_loss_kwargs(self) -> dict[str, Any]:
        if not self.loss_kwargs:
            return {}
        try:
            values = json.loads(self.loss_kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(f"--loss_kwargs must be a JSON object, got {self.loss_kwargs!r} ({error.msg})") from None
        if not isinstance(values, dict):  # a malformed string value, not an argument of the wrong type
            raise ValueError(f"--loss_kwargs must be a JSON object, got {self.loss_kwargs!r}")  # noqa: TRY004
        for name, value in values.items():  # Python's JSON reads NaN and Infinity
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"--loss_kwargs: {name!r} must be a finite number, got {value}")
        return values

    def parsed_prompts(self) -> dict[str, str] | str | None:
        """``prompts`` read: a dict of column names to prompts, one prompt (a string) for every text column,
        or ``None`` for none (also for ``""``). Which columns exist is checked with the data
        (:func:`contrasent.training.setup.column_prompts`).

        Raises:
            ValueError: a value starting with ``{`` that is not a JSON object, or a prompt that is not a string
                (the flag and the column are named).
        """
        prompts = self.prompts
        if not prompts:
            return None
        if isinstance(prompts, str):
            if not prompts.lstrip().startswith("{"):
                return prompts  # as sentence-transformers: a value that is no JSON object is one prompt for all
            try:
                prompts = json.loads(prompts)
            except json.JSONDecodeError as error:
                raise ValueError(f"--prompts must be a JSON object of column names to prompts, or one prompt, "
                                 f"got {self.prompts!r} ({error.msg})") from None
        if not isinstance(prompts, dict):  # a wrong value, not an argument of the wrong type
            raise ValueError(f"--prompts must be a JSON object of column names to prompts, or one prompt, "  # noqa: TRY004
                             f"got {prompts!r}")
        for column, prompt in prompts.items():
            if not isinstance(prompt, str):  # a wrong JSON value, as above
                raise ValueError(f"--prompts: the prompt of column {column!r} must be a string, got {prompt!r}")  # noqa: TRY004
        return prompts
