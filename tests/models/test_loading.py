"""A model loads whole or not at all (issue #15, class 1), and loading errors name their culprit (class 6).

Each case damages a saved folder the way a user, a crash or another tool would, and checks that
``from_pretrained`` raises naming the file (and the parameter and the shape it expected), instead of
building a random head, initialising parameters at random or ignoring a setting.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from contrasent import EncoderConfig, SentenceEncoder

BACKBONE_KEY = "encoder.layer.0.attention.self.query.weight"
TEXTS = ["a first sentence", "and a second, longer one"]


@pytest.fixture(scope="module")
def saved(tiny_bert_dir, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A saved encoder with a head (16 of 32 dims) and its embeddings of ``TEXTS``; copy before damaging."""
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, head=True, head_dim=16)
    folder = tmp_path_factory.mktemp("saved") / "model"
    encoder.save_pretrained(folder)
    return folder, encoder.encode(TEXTS)


@pytest.fixture
def model(saved, tmp_path) -> Path:
    shutil.copytree(saved[0], tmp_path / "model")
    return tmp_path / "model"


def edit_tensors(path: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)


def edit_json(path: Path, **changes) -> None:
    values = json.loads(path.read_text())
    values.update(changes)
    path.write_text(json.dumps(values))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def as_sentence_transformers_folder(folder: Path) -> None:
    """Leave only the sentence-transformers description (modules.json ...) for the reader to use."""
    (folder / "contrasent_config.json").unlink()


# (damage, exception, pattern of the message, with {folder} for the model folder)
HEAD = "2_Dense/model.safetensors"
DAMAGED = {
    "head weights deleted": (
        lambda f: (f / HEAD).unlink(),
        FileNotFoundError, r"{folder}/2_Dense/model.safetensors is missing.*linear.weight \(16, 32\)"),
    "head weight of another shape": (
        lambda f: edit_tensors(f / HEAD, lambda t: t.update({"linear.weight": torch.zeros(16, 16)})),
        ValueError, r"{folder}/2_Dense/model.safetensors: linear.weight has shape \(16, 16\), expected \(16, 32\)"),
    "head bias missing": (
        lambda f: edit_tensors(f / HEAD, lambda t: t.pop("linear.bias")),
        ValueError, r"{folder}/2_Dense/model.safetensors: linear.bias is missing"),
    "head with an extra tensor": (
        lambda f: edit_tensors(f / HEAD, lambda t: t.update({"scale": torch.ones(1)})),
        ValueError, r"{folder}/2_Dense/model.safetensors: scale is not a parameter of the head"),
    "head weights truncated": (
        lambda f: truncate(f / HEAD),
        OSError, r"{folder}/2_Dense/model.safetensors: cannot read the weights .*truncated or damaged"),
    "a backbone parameter deleted": (
        lambda f: edit_tensors(f / "model.safetensors", lambda t: t.pop(BACKBONE_KEY)),
        ValueError, (r"{folder}/model.safetensors: 1 parameter\(s\) of BertModel .* are not in the weights: "
                    r"encoder.layer.0.attention.self.query.weight \(32, 32\)")),
    "a backbone parameter of another shape": (
        lambda f: edit_tensors(f / "model.safetensors",
                               lambda t: t.update({BACKBONE_KEY: t[BACKBONE_KEY][:, :16].contiguous()})),
        ValueError, (r"{folder}/model.safetensors: 1 parameter\(s\) have another shape .*"
                    r"encoder.layer.0.attention.self.query.weight has shape \(32, 16\), expected \(32, 32\)")),
    "backbone weights truncated": (
        lambda f: truncate(f / "model.safetensors"),
        OSError, r"{folder}/model.safetensors: cannot read the weights"),
    "sentence-transformers folder without its Dense weights": (
        lambda f: (as_sentence_transformers_folder(f), (f / HEAD).unlink()),
        FileNotFoundError, r"{folder}/2_Dense/model.safetensors is missing"),
    "sentence-transformers Dense weights of another shape": (
        lambda f: (as_sentence_transformers_folder(f),
                   edit_tensors(f / HEAD, lambda t: t.update({"linear.weight": torch.zeros(16, 8)}))),
        ValueError, r"2_Dense/model.safetensors: linear.weight has shape \(16, 8\), expected \(16, 32\)"),
    "tokenizer truncated": (
        lambda f: truncate(f / "tokenizer.json"),
        OSError, r"{folder}: cannot load the tokenizer"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_folder_raises_naming_the_file(model, case) -> None:
    damage, error, pattern = DAMAGED[case]
    damage(model)
    with pytest.raises(error, match=pattern.format(folder=re.escape(str(model)))):
        SentenceEncoder.from_pretrained(model)


# Settings a folder names that cannot be honoured: (edit, pattern of the message)
UNHONOURABLE = {
    "normalize written as a string": (
        lambda f: edit_json(f / "contrasent_config.json", normalize="false"),
        r"contrasent_config.json: normalize must be true or false, got 'false'"),
    "head_dim written as a float": (
        lambda f: edit_json(f / "contrasent_config.json", head_dim=16.0),
        r"contrasent_config.json: head_dim must be a positive integer or null, got 16.0"),
    "max_seq_length beyond the position embeddings": (
        lambda f: edit_json(f / "contrasent_config.json", max_seq_length=100_000),
        r"max_seq_length=100000 is more than BertModel can take: its position embeddings end at 512 tokens"),
    "contrasent_config.json not an object": (
        lambda f: (f / "contrasent_config.json").write_text("[1, 2]"),
        r"contrasent_config.json: expected an object"),
    "sentence-transformers Normalize before Dense": (
        lambda f: (as_sentence_transformers_folder(f), edit_modules(f, ["Transformer", "Pooling", "Normalize", "Dense"])),
        r"modules.json: modules \['Transformer', 'Pooling', 'Normalize', 'Dense'\] are not supported.*in this order"),
    "sentence-transformers with two Dense modules": (
        lambda f: (as_sentence_transformers_folder(f), edit_modules(f, ["Transformer", "Pooling", "Dense", "Dense"])),
        r"modules.json: modules \['Transformer', 'Pooling', 'Dense', 'Dense'\] are not supported"),
    "sentence-transformers modules.json not a list": (
        lambda f: (as_sentence_transformers_folder(f), (f / "modules.json").write_text('{"0": "Transformer"}')),
        r"modules.json: expected a list"),
    "sentence-transformers Dense without out_features": (
        lambda f: (as_sentence_transformers_folder(f), drop_key(f / "2_Dense" / "config.json", "out_features")),
        r"2_Dense/config.json: the setting 'out_features' is missing"),
    "sentence-transformers default prompt naming no prompt": (
        lambda f: (as_sentence_transformers_folder(f),
                   edit_json(f / "config_sentence_transformers.json", prompts={"query": "query: "},
                             default_prompt_name="passage")),
        r"config_sentence_transformers.json: default_prompt_name 'passage' is not one of the prompts' names"),
    "sentence-transformers prompt that is not a string": (
        lambda f: (as_sentence_transformers_folder(f),
                   edit_json(f / "config_sentence_transformers.json", prompts={"query": ["query: "]})),
        r"config_sentence_transformers.json: prompts must map prompt names to prompt strings"),
    "sentence-transformers include_prompt written as a string": (
        lambda f: (as_sentence_transformers_folder(f), edit_json(f / "1_Pooling" / "config.json", include_prompt="no")),
        r"1_Pooling/config.json: include_prompt must be true or false, got 'no'"),
    "sentence-transformers truncate_dim beyond the dimension": (
        lambda f: (as_sentence_transformers_folder(f),
                   edit_json(f / "config_sentence_transformers.json", truncate_dim=4096)),
        r"truncate_dim must be in 1\.\.\d+ \(the model's embedding dimension\), got 4096"),
    "contrasent truncate_dim zero": (
        lambda f: edit_json(f / "contrasent_config.json", truncate_dim=0),
        r"contrasent_config.json: truncate_dim must be a positive integer, got 0"),
    "sentence-transformers length beyond the position embeddings": (
        lambda f: (as_sentence_transformers_folder(f), edit_json(f / "sentence_bert_config.json", max_seq_length=4096)),
        r"max_seq_length=4096 is more than BertModel can take"),
    "sentence-transformers lower-casing with a case-sensitive tokenizer": (
        lambda f: (as_sentence_transformers_folder(f), make_case_sensitive(f),
                   edit_json(f / "sentence_bert_config.json", do_lower_case=True)),
        r"sentence_bert_config.json: do_lower_case is true.*this tokenizer is case-sensitive"),
}


def edit_modules(folder: Path, kinds: list[str]) -> None:
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Dense": "2_Dense", "Normalize": "3_Normalize"}
    (folder / "modules.json").write_text(json.dumps([
        {"idx": i, "name": str(i), "path": paths[kind], "type": f"sentence_transformers.models.{kind}"}
        for i, kind in enumerate(kinds)]))


def drop_key(path: Path, key: str) -> None:
    values = json.loads(path.read_text())
    del values[key]
    path.write_text(json.dumps(values))


def make_case_sensitive(folder: Path) -> None:
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["normalizer"]["lowercase"] = False
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    edit_json(folder / "tokenizer_config.json", do_lower_case=False)


@pytest.mark.parametrize("case", sorted(UNHONOURABLE))
def test_a_setting_that_cannot_be_honoured_is_refused_naming_its_file(model, case) -> None:
    edit, pattern = UNHONOURABLE[case]
    edit(model)
    with pytest.raises(ValueError, match=pattern):
        SentenceEncoder.from_pretrained(model)


def test_an_override_of_the_head_size_does_not_start_a_random_head(model) -> None:
    with pytest.raises(ValueError, match=r"linear.weight has shape \(16, 32\), expected \(8, 32\)"):
        SentenceEncoder.from_pretrained(model, head_dim=8)


def test_an_override_beyond_the_position_embeddings_is_refused(model) -> None:
    with pytest.raises(ValueError, match=r"max_seq_length=513 is more than BertModel can take.*512"):
        SentenceEncoder.from_pretrained(model, max_seq_length=513)


def test_a_two_layer_pooling_on_a_one_layer_backbone_is_refused_when_built(tiny_bert_dir) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    backbone = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=64))
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    with pytest.raises(ValueError, match=r"pooling 'last2_avg' averages two layers, but BertModel has 1"):
        SentenceEncoder(backbone, tokenizer, EncoderConfig(pooling="last2_avg"))


def test_what_can_be_honoured_still_loads(saved, model, caplog) -> None:
    """The head loads exactly; a missing pooler (MLM checkpoints have none; contrasent never runs it), a
    lower-casing tokenizer with do_lower_case and a legacy Dense pickle of sentence-transformers < 3 load."""
    edit_tensors(model / "model.safetensors", lambda t: [t.pop(k) for k in list(t) if ".pooler." in k])
    np.testing.assert_array_equal(SentenceEncoder.from_pretrained(model).encode(TEXTS), saved[1])

    as_sentence_transformers_folder(model)
    edit_json(model / "sentence_bert_config.json", do_lower_case=True)  # tiny-bert's tokenizer lower-cases
    torch.save(load_file(model / HEAD), model / "2_Dense" / "pytorch_model.bin")
    (model / HEAD).unlink()
    with caplog.at_level(logging.WARNING, logger="contrasent.models.loading"):
        reloaded = SentenceEncoder.from_pretrained(model)
    assert "pytorch_model.bin is a legacy PyTorch pickle" in caplog.text
    np.testing.assert_array_equal(reloaded.encode(TEXTS), saved[1])


@pytest.mark.parametrize(("name", "error", "pattern"), [
    (None, TypeError, r"name_or_path must be a model folder or a Hugging Face Hub id .*got NoneType None"),
    (42, TypeError, r"got int 42"),
    (b"/tmp/model", TypeError, r"got bytes"),
    ("", ValueError, r"name_or_path must name a model folder or a Hugging Face Hub id, got ''"),
    ("   ", ValueError, r"got '   '"),
])
def test_a_name_that_is_no_name_is_refused_without_asking_the_hub(name, error, pattern, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(error, match=pattern):
        SentenceEncoder.from_pretrained(name)


def test_a_path_object_is_never_looked_up_on_the_hub(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"model folder 'org/model' does not exist"):
        SentenceEncoder.from_pretrained(Path("org/model"))


def test_a_file_is_not_a_model_folder(model) -> None:
    with pytest.raises(NotADirectoryError, match=r"model.safetensors is a file, not a model folder"):
        SentenceEncoder.from_pretrained(model / "model.safetensors")


@pytest.mark.parametrize(("settings", "pattern"), [
    ({"normalise": True}, r"unexpected argument 'normalise': neither an encoder setting .*; did you mean 'normalize'\?"),
    ({"poolng": "cls"}, r"unexpected argument 'poolng'.*did you mean 'pooling'\?"),
    ({"device": "cpu"}, r"unexpected argument 'device': neither an encoder setting \(cache_dir, default_prompt_name, head, "),
])
def test_a_misspelled_setting_is_named_with_the_closest(tiny_bert_dir, settings, pattern) -> None:
    with pytest.raises(TypeError, match=pattern):
        SentenceEncoder.from_pretrained(tiny_bert_dir, **settings)


def test_a_path_given_as_the_backbone_points_to_from_pretrained(tiny_bert_dir) -> None:
    with pytest.raises(TypeError, match=r"backbone must be a transformers model .*got str; .*from_pretrained"):
        SentenceEncoder(str(tiny_bert_dir), None)
