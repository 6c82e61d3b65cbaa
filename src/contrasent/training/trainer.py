"""`ContrastiveTrainer`: `transformers.Trainer` that trains a `SentenceEncoder` with a contrastive loss.

The training loop, mixed precision, gradient accumulation, distributed data parallelism, checkpointing,
resuming and logging are `transformers.Trainer`'s own; this class overrides only what differs:

* ``compute_loss``: encode every view of the batch, gather them across devices (when several processes
  run), arrange the embeddings as the loss expects, call it;
* ``training_step``: only with ``mini_batch_size`` set: gradient caching (:mod:`.gradcache`);
* ``get_train_dataloader``: only with ``batch_sampler`` other than ``"random"``: the samplers of
  :mod:`contrasent.data.samplers`;
* ``evaluate``: run an evaluator (e.g. STS-B dev Spearman) on the encoder instead of a prediction loop;
* ``_save`` / ``_load_from_checkpoint`` / ``_load_best_model``: the encoder's own folder format.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from contrasent.data.collator import ROW_ID_COLUMN, ContrastiveCollator
from contrasent.data.columns import DEFAULT_LOSS, SUPPORTED_FORMATS, ColumnLayout, infer_layout
from contrasent.data.validation import validate_training_data
from contrasent.hardware import warn_if_bfloat16_is_emulated
from contrasent.losses import LOSSES, InfoNCE, get_loss
from contrasent.losses.geometry import alignment, uniformity
from contrasent.losses.masks import false_negative_mask, similarity_threshold_mask
from contrasent.models.encoder import SentenceEncoder
from contrasent.models.padding_free import supports_padding_free
from contrasent.training.arguments import ContrastiveTrainingArguments
from contrasent.training.distributed import gather_step, gathered_loss_scale, world_size
from contrasent.training.gradcache import grad_cache_step
from contrasent.training.queue import MomentumEncoder, NegativeQueue

Evaluator = Callable[[SentenceEncoder], dict[str, float]]


def build_loss(args: ContrastiveTrainingArguments, layout: ColumnLayout) -> nn.Module:
    """The loss named by ``args.loss`` (default: the layout's), with the arguments it accepts."""
    name = args.loss or DEFAULT_LOSS[layout.mode]
    loss_class_kwargs = args.parsed_loss_kwargs()
    if name not in LOSSES:
        return get_loss(name)  # raises the ValueError listing valid names
    accepted = inspect.signature(LOSSES[name]).parameters
    if args.temperature is not None and "temperature" in accepted:
        loss_class_kwargs.setdefault("temperature", args.temperature)
    if args.hard_negative_weight and "hard_negative_weight" in accepted:
        loss_class_kwargs.setdefault("hard_negative_weight", args.hard_negative_weight)
    return get_loss(name, **loss_class_kwargs)


def check_loss_fits_layout(loss: nn.Module, layout: ColumnLayout) -> None:
    """Raise a ``ValueError`` when the data layout cannot feed the loss's call signature."""
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


class ContrastiveTrainer(Trainer):
    """Train a :class:`~contrasent.SentenceEncoder` with a contrastive objective.

    Args:
        model: the encoder to train.
        args: :class:`ContrastiveTrainingArguments`.
        train_dataset: a ``datasets.Dataset`` whose columns choose the mode (see
            :mod:`contrasent.data.columns`); every text is checked before training starts.
        loss: a loss module from :mod:`contrasent.losses`; default built from ``args``.
        evaluator: ``evaluator(encoder) -> {name: value}`` run at each evaluation (e.g. STS-B dev
            Spearman); its names, prefixed with ``eval_``, are what ``metric_for_best_model`` refers to.
        **kwargs: anything else `transformers.Trainer` takes (``callbacks``, ``optimizers``, ...).
    """

    def __init__(
        self,
        model: SentenceEncoder,
        args: ContrastiveTrainingArguments | None = None,
        train_dataset: Any = None,
        loss: nn.Module | None = None,
        evaluator: Evaluator | None = None,
        data_collator: Callable | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or ContrastiveTrainingArguments(output_dir="outputs")
        if not isinstance(args, ContrastiveTrainingArguments):
            raise TypeError(f"args must be ContrastiveTrainingArguments, got {type(args).__name__}")
        self.layout: ColumnLayout | None = None
        if train_dataset is not None:
            self.layout = infer_layout(train_dataset.column_names, source="train_dataset")
            validate_training_data(train_dataset, self.layout, source="train_dataset", score_range=args.score_range)
            _check_batch_fits(train_dataset, args)
            # Row numbers travel with each batch so that an error can name the rows it came from.
            train_dataset = train_dataset.add_column(ROW_ID_COLUMN, list(range(len(train_dataset))))
            loss = loss if loss is not None else build_loss(args, self.layout)
            check_loss_fits_layout(loss, self.layout)
            data_collator = data_collator or ContrastiveCollator(model.tokenizer, self.layout, args.max_seq_length)
        if isinstance(data_collator, ContrastiveCollator):
            if args.mini_batch_size is not None:
                # GradCache's chunks are the collator's length-sorted chunks: one forward pass each.
                data_collator.chunk_size = args.mini_batch_size
            data_collator.padding_free = args.padding_free and supports_padding_free(model)
        _freeze_unused_backbone_pooler(model)

        # Evaluation comes from `evaluator`, not from an eval_dataset: keep Trainer's check from refusing.
        eval_strategy = args.eval_strategy
        if evaluator is not None and kwargs.get("eval_dataset") is None:
            args.eval_strategy = IntervalStrategy.NO
        super().__init__(model=model, args=args, train_dataset=train_dataset, data_collator=data_collator, **kwargs)
        args.eval_strategy = eval_strategy
        if args.bf16 and self.args.device.type == "cpu":
            warn_if_bfloat16_is_emulated("training with bf16=True")
        self.loss = loss
        self.evaluator = evaluator
        self.queue, self.momentum_encoder = self._build_queue(model, args, loss)
        if self.momentum_encoder is not None:
            self.add_callback(_MomentumUpdate(self))
        self._geometry: dict[str, list[float]] = {"alignment": [], "uniformity": []}

    # ------------------------------------------------------------------------------------------------
    # The step
    # ------------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Encode all views of the batch and apply the loss. Returns a per-batch mean."""
        embeddings = self.embed(model, inputs)
        loss = self.loss_from_embeddings(embeddings, inputs, training=model.training)
        return (loss, {"embeddings": embeddings}) if return_outputs else loss

    def loss_from_embeddings(self, embeddings: torch.Tensor, inputs: dict[str, Any], training: bool) -> torch.Tensor:
        """(V·B, d) view-major embeddings of this process's rows -> the loss of the (global) batch.

        With gathering on (:attr:`gathers`), every rank's views, class labels, scores and text ids are
        gathered (:func:`~contrasent.training.distributed.gather_step`) and the loss covers the global
        batch, times :func:`~contrasent.training.distributed.gathered_loss_scale` (1.0): after DDP's
        averaging the gradient equals one process's on the concatenated batch.
        """
        views = embeddings.view(inputs["num_views"], -1, embeddings.shape[-1])  # (V, B, d)
        self._check_finite(views, inputs, "the encoder produced NaN or inf embeddings")
        if training:
            self._record_geometry(views)
            if self.momentum_encoder is not None:  # MoCo: positives and negatives from the EMA encoder
                keys = self.momentum_encoder(inputs["features"], inputs["restore"]).view(views.shape)
                views = torch.cat([views[:1], keys[1:].to(views.dtype)])
        scale = 1.0
        if self.gathers:
            views, inputs = gather_step(views, inputs)
            scale = gathered_loss_scale()
        loss = self.loss_from_views(views, inputs) * scale
        self._check_finite(loss.reshape(1, 1, 1), inputs, "the loss is NaN or inf")
        if training and self.queue is not None:  # after the loss: a batch is not its own queue entry
            self.queue.enqueue(views[1:].flatten(0, 1).detach(), inputs["text_ids"][1:].flatten())
        return loss

    @property
    def gathers(self) -> bool:
        """Whether embeddings are gathered across processes: ``gather_across_devices``, by default on
        when more than one process runs."""
        if self.args.gather_across_devices is None:
            return world_size() > 1
        return self.args.gather_across_devices

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        """`Trainer.training_step`, or with ``mini_batch_size`` set, the gradient-cached step
        (:func:`~contrasent.training.gradcache.grad_cache_step`)."""
        if self.args.mini_batch_size is None:
            return super().training_step(model, inputs, num_items_in_batch)
        return self._grad_cache_training_step(model, inputs, num_items_in_batch)

    def embed(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        """Run the encoder on each length-sorted chunk; return (V·B, d) embeddings in view-major order."""
        outputs = [model(**features) for features in inputs["features"]]
        return torch.cat(outputs)[inputs["restore"]]

    def _check_finite(self, values: torch.Tensor, inputs: dict[str, Any], what: str) -> None:
        """Stop at the first non-finite value, naming the step and the dataset rows of the batch it came from.

        ``values``: (V, B, ...) per-row values, or (1, 1, 1) for a batch-level value such as the loss.
        """
        finite = torch.isfinite(values).reshape(values.shape[0], values.shape[1], -1).all(dim=-1).all(dim=0)
        if bool(finite.all()):
            return
        row_ids = inputs.get("row_ids")
        if row_ids is None:
            rows = "rows unknown"
        elif finite.numel() == row_ids.numel():
            rows = f"dataset rows {row_ids[~finite].tolist()}"
        else:
            rows = f"batch of dataset rows {row_ids.tolist()}"
        raise FloatingPointError(f"step {self.state.global_step + 1}: {what} ({rows}); training stopped")

    def loss_from_views(self, views: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        """Arrange (V, B, d) view embeddings as ``self.loss.input_format`` requires and call the loss.

        * ``anchor_positive``: anchors = view 0, positives = view 1, hard negatives = views 2.. as (B, k, d);
        * ``views``: (view 0, view 1);
        * ``labels``: the label column, or for pair data: row i's anchor and positive share class i and
          each hard negative is a class of its own;
        * ``pair_label``: (view 0, view 1, label), or for triplets: anchor-positive pairs labelled 1 and
          anchor-negative pairs labelled 0;
        * ``scored_pairs``: (view 0, view 1, score).
        """
        num_views, batch = views.shape[0], views.shape[1]
        input_format = self.loss.input_format
        if input_format == "anchor_positive":
            negatives = views[2:].transpose(0, 1) if num_views > 2 else None
            extra = self._infonce_masks(views, negatives, inputs) if isinstance(self.loss, InfoNCE) else {}
            return self.loss(views[0], views[1], negatives, **extra)
        if input_format == "views":
            return self.loss(views[0], views[1])
        if input_format == "labels":
            if "class_labels" in inputs:
                return self.loss(views[0], inputs["class_labels"])
            rows = torch.arange(batch, device=views.device)
            labels = [rows, rows] + [batch * column + rows for column in range(1, num_views - 1)]
            return self.loss(views.reshape(num_views * batch, -1), torch.cat(labels))
        if input_format == "pair_label":
            if "class_labels" in inputs:
                return self.loss(views[0], views[1], inputs["class_labels"])
            others = views[1:].reshape((num_views - 1) * batch, -1)
            labels = torch.zeros(others.shape[0], dtype=torch.long, device=views.device)
            labels[:batch] = 1
            return self.loss(views[0].repeat(num_views - 1, 1), others, labels)
        if input_format == "scored_pairs":
            return self.loss(views[0], views[1], inputs["scores"])
        raise ValueError(f"loss {type(self.loss).__name__} has unknown input_format {input_format!r}")

    def _infonce_masks(
        self, views: torch.Tensor, negatives: torch.Tensor | None, inputs: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """InfoNCE's ``mask`` (duplicates by text id and/or candidates scoring too close to the positive) and
        the queue's ``extra_candidates``, whose duplicates of the row's anchor or positive are masked."""
        extra: dict[str, torch.Tensor] = {}
        queued = self.queue is not None and len(self.queue) > 0
        mask = None
        if self.args.mask_duplicates:
            ids = inputs["text_ids"]
            mask = false_negative_mask(ids[0], ids[1], ids[2:].T if views.shape[0] > 2 else None)
        margin, relative = self.args.false_negative_margin, self.args.false_negative_relative_margin
        if margin is not None or relative is not None:
            suspects = similarity_threshold_mask(
                views[0], views[1], negatives, margin=margin, relative_margin=relative,
                similarity=self.loss.similarity,
            )
            mask = suspects if mask is None else mask | suspects
        if queued:
            extra["extra_candidates"] = self.queue.embeddings
            if mask is not None:
                ids, queue_ids = inputs["text_ids"], self.queue.ids.to(mask.device)
                duplicates = (queue_ids[None, :] == ids[0][:, None]) | (queue_ids[None, :] == ids[1][:, None])
                mask = torch.cat([mask, duplicates & self.args.mask_duplicates], dim=1)
        if mask is not None:
            extra["mask"] = mask
        return extra

    @staticmethod
    def _build_queue(
        model: nn.Module, args: ContrastiveTrainingArguments, loss: nn.Module | None
    ) -> tuple[NegativeQueue | None, MomentumEncoder | None]:
        """The negative queue and momentum encoder asked for by ``args`` (InfoNCE only)."""
        if not args.queue_size and args.momentum is None:
            return None, None
        if not isinstance(loss, InfoNCE):
            raise ValueError(f"queue_size and momentum need an InfoNCE loss, got {type(loss).__name__}")  # noqa: TRY004
        return (NegativeQueue(args.queue_size) if args.queue_size else None,
                MomentumEncoder(model, args.momentum) if args.momentum is not None else None)

    def update_momentum_encoder(self) -> None:
        """After each optimizer step: move the momentum encoder towards the encoder (MoCo's EMA)."""
        if self.momentum_encoder is not None:
            self.momentum_encoder.update(self.accelerator.unwrap_model(self.model))

    # ------------------------------------------------------------------------------------------------
    # Gradient caching and batch samplers (hooks kept apart from the rest of the step)
    # ------------------------------------------------------------------------------------------------
    def _grad_cache_training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any
    ) -> torch.Tensor:
        """`Trainer.training_step`'s contract (train mode, inputs on the device, the loss divided for
        gradient accumulation before backward, ``accelerator.backward``, detached loss returned) with
        the forward and backward done by :func:`grad_cache_step`."""
        if self.is_deepspeed_enabled:
            raise ValueError("mini_batch_size (gradient caching) does not support DeepSpeed")
        model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        if self.loss_is_scaled_for_ga is not None:
            scaled_for_ga = self.loss_is_scaled_for_ga
        else:  # the same rule as Trainer.training_step
            scaled_for_ga = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
                self.compute_loss_func is not None
            )
        divisor = 1 if scaled_for_ga else getattr(self, "current_gradient_accumulation_steps", 1)

        def loss_fn(chunk_embeddings: list[torch.Tensor]) -> torch.Tensor:
            embeddings = torch.cat(chunk_embeddings)[inputs["restore"]]
            return self.loss_from_embeddings(embeddings, inputs, training=True) / divisor

        return grad_cache_step(
            encode=lambda features: model(**features),
            chunks=inputs["features"],
            loss_fn=loss_fn,
            backward=self.accelerator.backward,
            no_sync=lambda: self.accelerator.no_sync(model),
            autocast=self.compute_loss_context_manager,
        )

    def get_train_dataloader(self) -> Any:
        """`Trainer`'s loader for ``batch_sampler="random"``; otherwise a loader over
        :class:`~contrasent.data.samplers.NoDuplicatesBatchSampler` or
        :class:`~contrasent.data.samplers.GroupByLabelBatchSampler`, prepared by accelerate (each rank
        gets its slice of every global batch; the Trainer calls the sampler's ``set_epoch`` and skips
        the trained batches when resuming)."""
        if self.args.batch_sampler == "random":
            return super().get_train_dataloader()
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        from torch.utils.data import DataLoader

        sampler = build_batch_sampler(self.args, self.train_dataset, self.layout)
        loader = DataLoader(
            self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers and self.args.dataloader_num_workers > 0,
        )
        return self.accelerator.prepare(loader)

    # ------------------------------------------------------------------------------------------------
    # Logging: alignment and uniformity of the training batches (Wang & Isola 2020)
    # ------------------------------------------------------------------------------------------------
    def _record_geometry(self, views: torch.Tensor) -> None:
        if views.shape[0] < 2 or views.shape[1] < 2:
            return
        with torch.no_grad():
            anchors, positives = views[0].detach(), views[1].detach()
            self._geometry["alignment"].append(alignment(anchors, positives).item())
            self._geometry["uniformity"].append(uniformity(anchors).item())

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the mean alignment and uniformity since the last log to training logs."""
        if "loss" in logs:
            for name, values in self._geometry.items():
                if values:
                    logs[name] = round(sum(values) / len(values), 4)
                    values.clear()
        super().log(logs, *args, **kwargs)

    # ------------------------------------------------------------------------------------------------
    # Evaluation
    # ------------------------------------------------------------------------------------------------
    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Run the evaluator on the encoder; metrics are logged and returned as ``{prefix}_{name}``."""
        if self.evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        encoder = self.accelerator.unwrap_model(self.model)
        was_training = encoder.training
        try:
            results = self.evaluator(encoder)
        finally:
            encoder.train(was_training)
        metrics = {f"{metric_key_prefix}_{name}": float(value) for name, value in results.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ------------------------------------------------------------------------------------------------
    # Saving and loading: the encoder's folder format (safetensors, readable by three libraries)
    # ------------------------------------------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        encoder = self.accelerator.unwrap_model(self.model)
        self.describe_training(encoder)
        encoder.save_pretrained(output_dir)
        (Path(output_dir) / "training_args.json").write_text(self.args.to_json_string(), encoding="utf-8")

    def describe_training(self, encoder: SentenceEncoder) -> None:
        """Record the objective and hyperparameters in ``encoder.card_data`` (the saved model card shows them)."""
        card = encoder.card_data
        if self.layout is not None:
            columns = ", ".join(self.layout.text_columns)
            card.objective = f"{type(self.loss).__name__} on {self.layout.mode} data (columns: {columns})"
        args = self.args
        card.hyperparameters.update({
            "loss": type(self.loss).__name__ if self.loss is not None else None,
            **{name: value for name, value in vars(self.loss).items()
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
            "global_step": self.state.global_step,
        })

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, **kwargs: Any) -> str:
        """Save the encoder (model card included) to ``output_dir`` and upload it to ``args.hub_model_id``.

        The repository defaults to the output folder's name. Raises ``OSError`` when the Hub cannot be
        reached; the local save is complete by then.
        """
        encoder = self.accelerator.unwrap_model(self.model)
        self.describe_training(encoder)
        repo_id = kwargs.pop("repo_id", None) or self.args.hub_model_id or Path(self.args.output_dir).name
        return encoder.push_to_hub(repo_id, private=self.args.hub_private_repo,
                                   token=token or self.args.hub_token, commit_message=commit_message,
                                   save_directory=self.args.output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        _load_encoder_weights(model if model is not None else self.model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        _load_encoder_weights(self.model, self.state.best_model_checkpoint)


def _check_batch_fits(dataset: Any, args: ContrastiveTrainingArguments) -> None:
    """In-batch negatives need a full batch: a dataset smaller than one global batch is a setup error."""
    global_batch = args.per_device_train_batch_size * max(args.world_size, 1)
    if len(dataset) < global_batch:
        raise ValueError(
            f"train_dataset has {len(dataset)} rows, fewer than one batch (per_device_train_batch_size="
            f"{args.per_device_train_batch_size} x {max(args.world_size, 1)} process(es) = {global_batch}); "
            "lower the batch size or add data"
        )


class _MomentumUpdate(TrainerCallback):
    """Calls :meth:`ContrastiveTrainer.update_momentum_encoder` after every optimizer step."""

    def __init__(self, trainer: ContrastiveTrainer) -> None:
        self.trainer = trainer

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer.update_momentum_encoder()


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


def _freeze_unused_backbone_pooler(model: SentenceEncoder) -> None:
    """BERT-style backbones carry a pooler (dense + tanh on [CLS]) whose output our pooling never reads.

    Its parameters get no gradient, which DistributedDataParallel treats as an error; they are frozen
    (``requires_grad=False``) so DDP ignores them. They are still saved with the backbone.
    """
    pooler = getattr(model.backbone, "pooler", None)
    if isinstance(pooler, nn.Module):
        pooler.requires_grad_(False)


def _load_encoder_weights(model: nn.Module, folder: str | None) -> None:
    if folder is None:
        raise ValueError("no checkpoint folder to load the weights from")
    saved = SentenceEncoder.from_pretrained(folder)
    missing, unexpected = model.load_state_dict(saved.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: checkpoint does not match the model (missing {missing}, unexpected {unexpected})")

