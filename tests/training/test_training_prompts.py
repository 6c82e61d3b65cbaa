"""`--prompts` (issue #16): each column's prompt is prepended to its texts before tokenizing, as
sentence-transformers' trainer does; with ``include_prompt=False`` the prompt's tokens are left out of the
pooling, as in ``encode``.

The steps compared run on float64 tiny BERT with dropout off, so that equal inputs give equal losses and
gradients up to rounding.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import datasets
import pytest
import torch
from step_data import small_dataset

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.models.prompts import prompt_token_count

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "simcse.py"
ROWS, MAX_LENGTH = 8, 16
PROMPTS = {"anchor": "query: ", "positive": "passage: ", "negative": "passage: "}


def encoder(tiny_bert_dir, **settings) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir, dtype=torch.float64, hidden_dropout_prob=0.0,
                                           attention_probs_dropout_prob=0.0, **settings)


def trainer(model: SentenceEncoder, tmp_path, data: datasets.Dataset, **options) -> ContrastiveTrainer:
    args = ContrastiveTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
        max_steps=1, per_device_train_batch_size=ROWS, temperature=0.1, max_seq_length=MAX_LENGTH, **options)
    return ContrastiveTrainer(model=model, args=args, train_dataset=data)


def step_loss_and_gradients(tiny_bert_dir, tmp_path, data: datasets.Dataset, **options) -> tuple[torch.Tensor, dict]:
    """The loss of one step of the trainer's own collator and step on all of ``data``, and its gradients."""
    model = encoder(tiny_bert_dir).train()
    built = trainer(model, tmp_path, data, **options)
    batch = built.data_collator([data[i] for i in range(len(data))])
    loss = built.contrastive_step(model, batch)
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


def prepended(data: datasets.Dataset, prompts: dict[str, str]) -> datasets.Dataset:
    return data.map(lambda row: {name: prompts.get(name, "") + row[name] for name in data.column_names})


@pytest.mark.parametrize("options", [
    {}, {"mini_batch_size": 5}, {"momentum": 0.9, "queue_size": 8}, {"padding_free": False},
], ids=["plain", "gradcache", "momentum-queue", "padded"])
def test_a_step_with_prompts_is_a_step_on_prepended_texts(tiny_bert_dir, tmp_path, options) -> None:
    data = small_dataset("triplets", ROWS)
    loss, gradients = step_loss_and_gradients(tiny_bert_dir, tmp_path, data, prompts=json.dumps(PROMPTS), **options)
    expected_loss, expected = step_loss_and_gradients(tiny_bert_dir, tmp_path, prepended(data, PROMPTS), **options)
    torch.testing.assert_close(loss, expected_loss, rtol=0, atol=1e-6)
    assert len(expected) > 10 and gradients.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(gradients[name], value, rtol=0, atol=1e-6, msg=name)


def test_one_prompt_applies_to_every_text_column(tiny_bert_dir, tmp_path) -> None:
    data = small_dataset("triplets", ROWS)
    built = trainer(encoder(tiny_bert_dir), tmp_path, data, prompts="query: ")
    assert built.data_collator.prompts == dict.fromkeys(["anchor", "positive", "negative"], "query: ")
    assert built.data_collator.include_prompt is True


@pytest.mark.parametrize("padding_free", [False, True])
def test_without_include_prompt_the_chunks_leave_the_prompt_out_of_the_pooling(tiny_bert_dir, padding_free) -> None:
    model = encoder(tiny_bert_dir, include_prompt=False).eval()
    data = small_dataset("triplets", 4)
    rows = [data[i] for i in range(len(data))]
    layout = infer_layout(data.column_names)
    collator = ContrastiveCollator(model.tokenizer, layout, MAX_LENGTH, chunk_size=5, padding_free=padding_free,
                                   prompts=PROMPTS, include_prompt=False)
    batch = collator(rows)
    counts = {prompt: prompt_token_count(model.tokenizer, prompt) for prompt in set(PROMPTS.values())}
    assert counts["query: "] > 1  # [CLS] and the prompt's own tokens
    expected_lengths = torch.tensor([counts[PROMPTS[name]] for name in layout.text_columns]).repeat_interleave(4)
    order = torch.argsort(batch.restore)  # position in the chunks -> view-major text index
    assert torch.equal(torch.cat([chunk["prompt_lengths"] for chunk in batch.chunks]), expected_lengths[order])
    with torch.no_grad():
        got = torch.cat([model(**chunk) for chunk in batch.chunks])[batch.restore]
    for view, name in enumerate(layout.text_columns):
        alone = model.encode([row[name] for row in rows], prompt=PROMPTS[name], max_length=MAX_LENGTH,
                             convert_to="torch")
        torch.testing.assert_close(got[view * 4:(view + 1) * 4].float(), alone, rtol=0, atol=1e-6)
    pooled = ContrastiveCollator(model.tokenizer, layout, MAX_LENGTH, padding_free=padding_free, prompts=PROMPTS)(rows)
    assert all("prompt_lengths" not in chunk for chunk in pooled.chunks)  # include_prompt=True: nothing extra


def test_truncation_cuts_the_text_never_the_prompt(tiny_bert_dir) -> None:
    tokenizer = encoder(tiny_bert_dir).tokenizer
    layout = infer_layout(["text"])
    batch = ContrastiveCollator(tokenizer, layout, max_length=8, chunk_size=4, prompts={"text": "query: "})(
        [{"text": "a long sentence " * 20}, {"text": "short"}])
    prompt_ids = tokenizer("query: ")["input_ids"][:-1]  # without its [SEP]
    (chunk,) = batch.chunks
    ids = chunk["input_ids"][batch.restore]
    assert ids.shape[1] == 8 and ids[0, :len(prompt_ids)].tolist() == prompt_ids
    assert torch.equal(batch.text_ids[0], batch.text_ids[1])  # duplicates are judged on the raw texts


def test_the_trainer_tells_the_collator_the_models_include_prompt(tiny_bert_dir, tmp_path) -> None:
    built = trainer(encoder(tiny_bert_dir, include_prompt=False), tmp_path, small_dataset("triplets", ROWS),
                    prompts='{"anchor": "query: "}')
    assert built.data_collator.prompts == {"anchor": "query: "} and built.data_collator.include_prompt is False


def test_a_prompt_for_a_column_the_data_lacks_is_refused_naming_it(tiny_bert_dir, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"--prompts names column\(s\) \['query'\] that are not text columns of the "
                                         r"training data; its text columns are \['anchor', 'positive', 'negative'\]"):
        trainer(encoder(tiny_bert_dir), tmp_path, small_dataset("triplets", ROWS), prompts='{"query": "query: "}')


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("simcse_training_prompts", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_recipe_takes_prompts_as_a_flag_and_in_a_config_file(recipe, tmp_path) -> None:
    _, _, args, _ = recipe.parse_arguments(["--output_dir", str(tmp_path), "--prompts", '{"anchor": "query: "}'])
    assert args.parsed_prompts() == {"anchor": "query: "}
    config = tmp_path / "config.yaml"
    config.write_text(f"output_dir: {tmp_path}\nprompts: {{anchor: 'query: ', positive: 'passage: '}}\n")
    _, _, args, _ = recipe.parse_arguments([str(config)])
    assert args.parsed_prompts() == {"anchor": "query: ", "positive": "passage: "}


def test_a_prompt_that_leaves_no_room_for_text_is_refused(tiny_bert_dir, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"--prompts: the prompt of column 'anchor' takes \d+ tokens, which leaves no "
                                         r"room for its texts in --max_seq_length 16"):
        trainer(encoder(tiny_bert_dir), tmp_path, small_dataset("triplets", ROWS),
                prompts=json.dumps({"anchor": "represent this question for retrieving supporting passages " * 2}))
