"""Settings that cannot be right are refused when the arguments are parsed, naming the flag (issue #15,
class 4); a training length beyond the model's positions is capped with a warning."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import datasets
import pytest
from transformers import HfArgumentParser

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.losses import Matryoshka
from contrasent.training.card import describe_training

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "simcse.py"

BAD_FLAGS = [
    # the examples
    (["--temperature", "inf"], "--temperature must be a finite number > 0, got inf"),
    (["--max_steps", "0"], "--max_steps must be a positive integer, or -1 to train for --num_train_epochs, got 0"),
    (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps must be a positive integer, got 0"),
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be a positive integer, got 0"),
    (["--per_device_train_batch_size", "-4"], "--per_device_train_batch_size must be a positive integer, got -4"),
    (["--fp16", "true", "--bf16", "true"], "--fp16 and --bf16 cannot both be on"),
    # the same class: other numbers transformers or contrasent accepted
    (["--temperature", "nan"], "--temperature must be a finite number > 0, got nan"),
    (["--max_steps", "-5"], "--max_steps must be a positive integer, or -1"),
    (["--per_device_eval_batch_size", "0"], "--per_device_eval_batch_size must be a positive integer, got 0"),
    (["--learning_rate=-1e-5"], "--learning_rate must be a finite number > 0, got -1e-05"),
    (["--learning_rate", "nan"], "--learning_rate must be a finite number > 0, got nan"),
    (["--num_train_epochs", "0"], "--num_train_epochs must be a finite number > 0, got 0.0"),
    (["--num_train_epochs", "inf"], "--num_train_epochs must be a finite number > 0, got inf"),
    (["--warmup_steps", "1.5"], "--warmup_steps must be 0, an integer number of steps, or a fraction in (0, 1)"),
    (["--weight_decay", "nan"], "--weight_decay must be a finite number >= 0, got nan"),
    (["--adam_beta2", "1"], "--adam_beta2 must be a number in [0, 1), got 1.0"),
    (["--adam_epsilon", "0"], "--adam_epsilon must be a finite number > 0, got 0.0"),
    (["--max_grad_norm", "-1"], "--max_grad_norm must be a finite number >= 0, got -1.0"),
    (["--logging_steps", "-1"], "--logging_steps must be a positive integer, or a fraction of the total steps"),
    (["--save_strategy", "steps", "--save_steps", "0"], "--save_steps must be a positive integer, or a fraction"),
    (["--eval_strategy", "steps", "--eval_steps", "0"], "--eval_steps must be a positive integer, or a fraction"),
    (["--save_total_limit", "0"], "--save_total_limit must be a positive integer, got 0"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**32), got -1"),
    (["--dataloader_num_workers", "-1"], "--dataloader_num_workers must be an integer >= 0, got -1"),
    (["--eval_accumulation_steps", "0"], "--eval_accumulation_steps must be a positive integer, got 0"),
    (["--fp16_full_eval", "true", "--bf16_full_eval", "true"], "--fp16_full_eval and --bf16_full_eval cannot both"),
    # the contrastive flags
    (["--temperature", "-0.1"], "--temperature must be a finite number > 0, got -0.1"),
    (["--hard_negative_weight", "inf"], "--hard_negative_weight must be a finite number, got inf"),
    (["--max_seq_length", "0"], "--max_seq_length must be a positive integer, got 0"),
    (["--mini_batch_size", "0"], "--mini_batch_size must be a positive integer, got 0"),
    (["--mini_batch_tokens", "0"], "--mini_batch_tokens must be a positive integer, got 0"),
    (["--samples_per_label", "1"], "--samples_per_label must be an integer >= 2, got 1"),
    (["--batch_sampler", "group_by_label", "--per_device_train_batch_size", "8", "--samples_per_label", "3"],
     "--per_device_train_batch_size (8) must be a multiple of --samples_per_label (3)"),
    (["--queue_size", "-1"], "--queue_size must be an integer >= 0, got -1"),
    (["--momentum", "nan"], "--momentum must be a number in [0, 1), got nan"),
    (["--momentum", "1"], "--momentum must be a number in [0, 1), got 1.0"),
    (["--false_negative_margin", "nan"], "--false_negative_margin must be a finite number >= 0, got nan"),
    (["--false_negative_relative_margin", "1.5"], "--false_negative_relative_margin must be a number in [0, 1)"),
    (["--score_range", "0", "inf"], "--score_range must be two finite numbers low < high, got [0.0, inf]"),
    (["--score_range", "1", "1"], "--score_range must be two finite numbers low < high, got [1.0, 1.0]"),
    (["--loss_kwargs", "{margin: 1}"], "--loss_kwargs must be a JSON object"),
    (["--loss_kwargs", '{"margin": NaN}'], "--loss_kwargs: 'margin' must be a finite number, got nan"),
    (["--prompts", '{"anchor": "query: "'], "--prompts must be a JSON object of column names to prompts, or one prompt"),
    (["--prompts", '{"anchor": 1}'], "--prompts: the prompt of column 'anchor' must be a string, got 1"),
    (["--prompts", '{"train": {"anchor": "query: "}}'], "--prompts: the prompt of column 'train' must be a string"),
    (["--matryoshka_dims", "32", "0"], "--matryoshka_dims must be distinct positive integers, got [32, 0]"),
    (["--matryoshka_dims", "32", "-8"], "--matryoshka_dims must be distinct positive integers, got [32, -8]"),
    (["--matryoshka_dims", "32", "16", "32"], "--matryoshka_dims must be distinct positive integers"),
    (["--matryoshka_weights", "1", "1"], "--matryoshka_weights needs --matryoshka_dims"),
    (["--matryoshka_dims", "32", "16", "--matryoshka_weights", "1"],
     "--matryoshka_weights must be 2 finite numbers > 0 (one per --matryoshka_dims), got [1.0]"),
    (["--matryoshka_dims", "32", "16", "--matryoshka_weights", "1", "-1"],
     "--matryoshka_weights must be 2 finite numbers > 0"),
    (["--matryoshka_dims", "32", "16", "--matryoshka_weights", "1", "inf"],
     "--matryoshka_weights must be 2 finite numbers > 0"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS, ids=[" ".join(flags) for flags, _ in BAD_FLAGS])
def test_a_setting_that_cannot_be_right_is_refused_naming_the_flag(tmp_path, flags, message) -> None:
    parser = HfArgumentParser(ContrastiveTrainingArguments)
    with pytest.raises(ValueError) as caught:
        parser.parse_args_into_dataclasses(args=["--output_dir", str(tmp_path), "--report_to", "none", *flags])
    assert message in str(caught.value)


def test_good_settings_pass(tmp_path) -> None:
    parser = HfArgumentParser(ContrastiveTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(args=[
        "--output_dir", str(tmp_path), "--report_to", "none", "--temperature", "0.05", "--max_steps", "-1",
        "--warmup_steps", "0.1", "--logging_steps", "0.25", "--momentum", "0", "--score_range", "0", "5",
        "--batch_sampler", "group_by_label", "--per_device_train_batch_size", "6", "--samples_per_label", "3"])
    assert args.temperature == 0.05 and args.max_steps == -1


def test_matryoshka_flags_wrap_the_loss(tiny_bert_dir, tmp_path, caplog) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)  # 32-dimensional embeddings
    data = datasets.Dataset.from_dict({"text": ["one sentence", "another one"]})
    parser = HfArgumentParser(ContrastiveTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(args=[
        "--output_dir", str(tmp_path), "--report_to", "none", "--per_device_train_batch_size", "2",
        "--temperature", "0.1", "--matryoshka_dims", "8", "32", "16", "--matryoshka_weights", "0.5", "1", "2"])
    with caplog.at_level(logging.WARNING):
        trainer = ContrastiveTrainer(model=encoder, args=args, train_dataset=data)
    assert isinstance(trainer.loss, Matryoshka) and trainer.loss.loss.temperature == 0.1
    assert trainer.loss.dims == (32, 16, 8) and trainer.loss.weights == (1.0, 2.0, 0.5)
    assert "matryoshka" not in caplog.text
    describe_training(encoder, trainer.loss, trainer.layout, args, global_step=0)
    hyper = encoder.card_data.hyperparameters  # the card names the loss summed and its dimensions
    assert hyper["loss"] == "InfoNCE" and hyper["temperature"] == 0.1
    assert hyper["matryoshka_dims"] == [8, 32, 16] and hyper["matryoshka_weights"] == [0.5, 1.0, 2.0]


def test_matryoshka_dims_must_fit_the_model(tiny_bert_dir, tmp_path, caplog) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    data = datasets.Dataset.from_dict({"text": ["one sentence", "another one"]})

    def build(dims: list[int]) -> ContrastiveTrainer:
        args = ContrastiveTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2,
                                            report_to="none", matryoshka_dims=dims)
        return ContrastiveTrainer(model=encoder, args=args, train_dataset=data)

    with pytest.raises(ValueError, match=r"--matryoshka_dims \[64\] is more than the model's 32-dimensional"):
        build([64, 16])
    with caplog.at_level(logging.WARNING):
        build([16, 8])
    assert "--matryoshka_dims [16, 8] leaves out the model's full 32 dimensions" in caplog.text


def test_a_training_length_beyond_the_models_positions_is_capped_with_a_warning(tiny_bert_dir, tmp_path,
                                                                                 caplog) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), max_seq_length=100000, max_steps=1,
                                        per_device_train_batch_size=2, report_to="none", save_strategy="no")
    data = datasets.Dataset.from_dict({"text": ["one sentence", "another one"]})
    with caplog.at_level(logging.WARNING):
        trainer = ContrastiveTrainer(model=encoder, args=args, train_dataset=data)
    assert trainer.data_collator.max_length == 512
    assert "--max_seq_length 100000 is more than the model's 512 positions: training truncates texts at 512" in caplog.text


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("simcse_argument_checks", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("flags", "message"), [
    (["--max_train_samples", "0"], "--max_train_samples must be a positive integer, got 0"),
    (["--inference_max_seq_length", "-1"], "--inference_max_seq_length must be a positive integer, got -1"),
    (["--max_steps", "0"], "--max_steps must be a positive integer"),
])
def test_the_recipe_refuses_bad_numbers_when_parsing(recipe, tmp_path, flags, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        recipe.parse_arguments(["--output_dir", str(tmp_path), *flags])


def test_the_recipe_refuses_an_inference_length_the_model_has_no_positions_for(recipe, tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    with pytest.raises(recipe.RecipeError, match=r"--inference_max_seq_length 100000 is more than the model's 512"):
        recipe.set_inference_length(encoder, 100000)
    recipe.set_inference_length(encoder, 384)
    assert encoder.max_seq_length == 384


@pytest.mark.parametrize(("columns", "options", "refused"), [
    ({"text": ["one sentence", "another one"]}, {}, True),
    ({"text": ["one sentence", "another one"], "label": [0, 1]}, {}, True),
    ({"text": ["one sentence", "another one"]}, {"queue_size": 4}, False),
    ({"anchor": ["q1", "q2"], "positive": ["a1", "a2"], "negative": ["n1", "n2"]}, {}, False),
    ({"s1": ["a", "b"], "s2": ["c", "d"], "label": [0, 1]}, {}, False),
], ids=["texts", "labels", "queue", "hard-negatives", "pair-labels"])
def test_a_batch_of_one_row_without_negatives_is_refused(tiny_bert_dir, tmp_path, columns, options, refused) -> None:
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=1, report_to="none",
                                        **options)

    def build():
        ContrastiveTrainer(model=SentenceEncoder.from_pretrained(tiny_bert_dir), args=args,
                           train_dataset=datasets.Dataset.from_dict(columns))

    if not refused:
        build()
        return
    with pytest.raises(ValueError, match=r"--per_device_train_batch_size 1 x 1 process\(es\) puts one row in a "
                                         r"batch: \w+ then has no negatives"):
        build()
