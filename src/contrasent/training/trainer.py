"""`ContrastiveTrainer`: `transformers.Trainer` that trains a `SentenceEncoder` with a contrastive loss.

The training loop, mixed precision, gradient accumulation, distributed data parallelism, checkpointing,
resuming and logging are `transformers.Trainer`'s own; this class overrides only its hooks:

* ``compute_loss``: the :class:`~contrasent.training.step.ContrastiveStep` (encode every view of the
  batch, gather across devices, arrange for the loss, call it; with ``mini_batch_size``, gradient
  caching, whose second pass runs in the returned loss's backward, so ``Trainer.training_step`` is
  unchanged);
* ``get_train_dataloader``: only with ``batch_sampler`` other than ``"random"``: the samplers of
  :mod:`contrasent.data.samplers`;
* ``log``: adds the alignment and uniformity of the training batches;
* ``evaluate``: run an evaluator (e.g. STS-B dev Spearman) on the encoder instead of a prediction loop;
* ``_save`` / ``_load_from_checkpoint`` / ``_load_best_model`` / ``push_to_hub``: the encoder's own
  folder format and model card; ``_save_checkpoint``: `Trainer`'s, with a failed write (a full disk)
  named (:mod:`contrasent.training.write_errors`);
* ``_save_optimizer_and_scheduler`` / ``_load_optimizer_and_scheduler``: also the negative queue and the
  momentum encoder, so that a resumed run continues exactly (:mod:`contrasent.training.step_state`).

Batches are :class:`~contrasent.data.batch.Batch` objects: accelerate's data loader moves them to the
device through their ``to`` method.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import DistributedType
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy

from contrasent.data.batch import Batch
from contrasent.data.collator import ROW_ID_COLUMN, ContrastiveCollator
from contrasent.data.columns import ColumnLayout, infer_layout
from contrasent.data.row_sources import row_source
from contrasent.data.validation import validate_training_data
from contrasent.hardware import warn_if_bfloat16_is_emulated
from contrasent.models.encoder import SentenceEncoder
from contrasent.models.padding_free import supports_padding_free
from contrasent.training.arguments import ContrastiveTrainingArguments
from contrasent.training.card import describe_training
from contrasent.training.setup import (
    apply_dropout,
    build_batch_sampler,
    build_loss,
    build_step,
    caches_gradients,
    check_batch_fits,
    check_batch_has_negatives,
    check_loss_fits_layout,
    check_matryoshka_dims,
    check_prompts_fit,
    check_short_rows_fit_loss,
    column_prompts,
    freeze_unused_backbone_pooler,
    training_length,
)
from contrasent.training.step_state import load_step_state, save_step_state
from contrasent.training.write_errors import named_write_errors

Evaluator = Callable[[SentenceEncoder], dict[str, float]]


class ContrastiveTrainer(Trainer):
    """Train a :class:`~contrasent.SentenceEncoder` with a contrastive objective.

    Args:
        model: the encoder to train.
        args: :class:`ContrastiveTrainingArguments`.
        train_dataset: a ``datasets.Dataset`` whose columns choose the mode (see
            :mod:`contrasent.data.columns`); every text is checked before training starts, and the columns
            ``args.prompts`` names against its text columns (:func:`~contrasent.training.setup.column_prompts`).
        loss: a loss module from :mod:`contrasent.losses`; default built from ``args``.
        evaluator: ``evaluator(encoder) -> {name: value}`` run at each evaluation (e.g. STS-B dev
            Spearman); its names, prefixed with ``eval_``, are what ``metric_for_best_model`` refers to.
        **kwargs: anything else `transformers.Trainer` takes (``callbacks``, ``optimizers``, ...).

    :attr:`contrastive_step` is the step it runs (its loss, queue and momentum encoder).
    """

    # compute_loss returns a per-batch mean: Trainer.training_step divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

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
        rows = None
        if train_dataset is not None:
            rows = row_source(train_dataset, "train_dataset")  # file lines, when read by load_training_file
            self.layout = infer_layout(train_dataset.column_names, source=rows.name)
            validate_training_data(train_dataset, self.layout, source="train_dataset", score_range=args.score_range)
            check_batch_fits(train_dataset, args, rows.name)
            # Row numbers travel with each batch so that an error can name the rows it came from.
            train_dataset = train_dataset.add_column(ROW_ID_COLUMN, list(range(len(train_dataset))))
            loss = loss if loss is not None else build_loss(args, self.layout)
            check_matryoshka_dims(model, args)
            check_loss_fits_layout(loss, self.layout)
            check_short_rows_fit_loss(train_dataset, self.layout, loss)
            check_batch_has_negatives(loss, self.layout, args)
            data_collator = data_collator or ContrastiveCollator(model.tokenizer, self.layout,
                                                                 training_length(model, args))
        if isinstance(data_collator, ContrastiveCollator):
            if args.mini_batch_size is not None:
                # GradCache's chunks are the collator's length-sorted chunks: one forward pass each.
                data_collator.chunk_size = args.mini_batch_size
            if args.mini_batch_tokens is not None:
                data_collator.chunk_tokens = args.mini_batch_tokens
            data_collator.padding_free = args.padding_free and supports_padding_free(model)
            if args.prompts:
                data_collator.prompts = column_prompts(args, data_collator.layout)
                check_prompts_fit(data_collator.prompts, data_collator.tokenizer, data_collator.max_length)
            data_collator.include_prompt = getattr(getattr(model, "config", None), "include_prompt", True)
        freeze_unused_backbone_pooler(model)
        if args.dropout is not None:
            apply_dropout(model, args.dropout)

        # Evaluation comes from `evaluator`, not from an eval_dataset: keep Trainer's check from refusing.
        eval_strategy = args.eval_strategy
        if evaluator is not None and kwargs.get("eval_dataset") is None:
            args.eval_strategy = IntervalStrategy.NO
        super().__init__(model=model, args=args, train_dataset=train_dataset, data_collator=data_collator, **kwargs)
        args.eval_strategy = eval_strategy
        deepspeed = self.accelerator.distributed_type == DistributedType.DEEPSPEED
        if caches_gradients(args) and deepspeed:
            raise ValueError("mini_batch_size / mini_batch_tokens (gradient caching) does not support DeepSpeed")
        if args.bf16 and self.args.device.type == "cpu":
            warn_if_bfloat16_is_emulated("training with bf16=True")
        if self.args.device.type == "cpu":  # pinned memory speeds copies to an accelerator; on a CPU torch warns
            args.dataloader_pin_memory = False
        self.evaluator = evaluator
        self.contrastive_step = build_step(model, args, loss, row_names=rows.rows if rows else None)
        if self.contrastive_step.momentum_encoder is not None:
            self.add_callback(_MomentumUpdate(self))

    @property
    def loss(self) -> nn.Module | None:
        """The objective (:attr:`contrastive_step`'s)."""
        return self.contrastive_step.loss

    @loss.setter
    def loss(self, loss: nn.Module) -> None:
        self.contrastive_step.loss = loss

    @property
    def gathers(self) -> bool:
        """Whether embeddings are gathered across processes (``gather_across_devices``; by default on when
        more than one process runs)."""
        return self.contrastive_step.gather

    def compute_loss(
        self,
        model: nn.Module,
        inputs: Batch,
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of the batch (a per-batch mean), from :attr:`contrastive_step`.

        With ``mini_batch_size`` or ``mini_batch_tokens`` (and gradients on) the step caches gradients: its
        loss's backward re-embeds each chunk, with DDP's gradient all-reduce suspended for all chunks but
        the last.
        """
        batch = inputs.to(self.args.device)  # a no-op when the data loader has moved it already
        step = self.contrastive_step
        step_number = self.state.global_step + 1
        if return_outputs:
            embeddings = step.embed(model, batch)
            loss = step.loss_from_embeddings(embeddings, batch, training=model.training, step_number=step_number)
            return loss, {"embeddings": embeddings}
        return step(model, batch, step_number=step_number, no_sync=lambda: self.accelerator.no_sync(model))

    def update_momentum_encoder(self) -> None:
        """After each optimizer step: move the momentum encoder towards the encoder (MoCo's EMA)."""
        if self.contrastive_step.momentum_encoder is not None:
            self.contrastive_step.momentum_encoder.update(self.accelerator.unwrap_model(self.model))

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

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the mean alignment and uniformity of the training batches since the last log (Wang & Isola
        2020)."""
        if "loss" in logs:
            logs.update(self.contrastive_step.geometry.pop_means())
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
    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """`Trainer`'s checkpoint; a write that fails (a full disk) names the checkpoint folder."""
        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        with named_write_errors(folder):
            super()._save_checkpoint(model, trial)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        encoder = self.accelerator.unwrap_model(self.model)
        describe_training(encoder, self.loss, self.layout, self.args, self.state.global_step, self.state.epoch)
        with named_write_errors(output_dir):
            encoder.save_pretrained(output_dir, exist_ok=True)  # output_dir is the trainer's: checkpoints, logs
            (Path(output_dir) / "training_args.json").write_text(self.args.to_json_string(), encoding="utf-8")

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, **kwargs: Any) -> str:
        """Save the encoder (model card included) to ``output_dir`` and upload it to ``args.hub_model_id``.

        The repository defaults to the output folder's name. Raises ``OSError`` when the Hub cannot be
        reached; the local save is complete by then.
        """
        encoder = self.accelerator.unwrap_model(self.model)
        describe_training(encoder, self.loss, self.layout, self.args, self.state.global_step, self.state.epoch)
        repo_id = kwargs.pop("repo_id", None) or self.args.hub_model_id or Path(self.args.output_dir).name
        return encoder.push_to_hub(repo_id, private=self.args.hub_private_repo,
                                   token=token or self.args.hub_token, commit_message=commit_message,
                                   save_directory=self.args.output_dir)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        """The optimizer and scheduler, and the step's own state: the negative queue and the momentum
        encoder (:mod:`contrasent.training.step_state`), written before ``trainer_state.json``."""
        super()._save_optimizer_and_scheduler(output_dir)
        save_step_state(self.contrastive_step, output_dir, self.args.process_index, self.args.world_size,
                        main_process=self.args.should_save)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            load_step_state(self.contrastive_step, checkpoint, self.args.process_index, self.args.world_size,
                            self.args.device)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        _load_encoder_weights(model if model is not None else self.model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        _load_encoder_weights(self.model, self.state.best_model_checkpoint)


class _MomentumUpdate(TrainerCallback):
    """Calls :meth:`ContrastiveTrainer.update_momentum_encoder` after every optimizer step."""

    def __init__(self, trainer: ContrastiveTrainer) -> None:
        self.trainer = trainer

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer.update_momentum_encoder()


def _load_encoder_weights(model: nn.Module, folder: str | None) -> None:
    if folder is None:
        raise ValueError("no checkpoint folder to load the weights from")
    saved = SentenceEncoder.from_pretrained(folder)
    missing, unexpected = model.load_state_dict(saved.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: checkpoint does not match the model (missing {missing}, unexpected {unexpected})")

