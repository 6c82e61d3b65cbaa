"""`ContrastiveTrainer`: `transformers.Trainer` that trains a `SentenceEncoder` with a contrastive loss.

The training loop, mixed precision, gradient accumulation, distributed data parallelism, checkpointing,
resuming and logging are `transformers.Trainer`'s own; this class overrides only what differs:

* ``compute_loss``: encode every view of the batch, arrange the embeddings as the loss expects, call it;
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
from transformers import Trainer
from transformers.trainer_utils import IntervalStrategy

from contrasent.data.collator import ROW_ID_COLUMN, ContrastiveCollator
from contrasent.data.columns import DEFAULT_LOSS, SUPPORTED_FORMATS, ColumnLayout, infer_layout
from contrasent.data.validation import validate_training_data
from contrasent.encoder import SentenceEncoder
from contrasent.losses import LOSSES, InfoNCE, get_loss
from contrasent.metrics import alignment, uniformity
from contrasent.training.arguments import ContrastiveTrainingArguments
from contrasent.training.false_negatives import false_negative_mask

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
        _freeze_unused_backbone_pooler(model)

        # Evaluation comes from `evaluator`, not from an eval_dataset: keep Trainer's check from refusing.
        eval_strategy = args.eval_strategy
        if evaluator is not None and kwargs.get("eval_dataset") is None:
            args.eval_strategy = IntervalStrategy.NO
        super().__init__(model=model, args=args, train_dataset=train_dataset, data_collator=data_collator, **kwargs)
        args.eval_strategy = eval_strategy
        self.loss = loss
        self.evaluator = evaluator
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
        views = embeddings.view(inputs["num_views"], -1, embeddings.shape[-1])  # (V, B, d)
        self._check_finite(views, inputs, "the encoder produced NaN or inf embeddings")
        loss = self.loss_from_views(views, inputs)
        self._check_finite(loss.reshape(1, 1, 1), inputs, "the loss is NaN or inf")
        if model.training:
            self._record_geometry(views)
        return (loss, {"embeddings": embeddings}) if return_outputs else loss

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
            extra = {}
            if isinstance(self.loss, InfoNCE) and self.args.mask_duplicates:
                ids = inputs["text_ids"]
                extra["mask"] = false_negative_mask(ids[0], ids[1], ids[2:].T if num_views > 2 else None)
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

