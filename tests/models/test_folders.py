"""Saving and loading: the three layouts in, one folder that contrasent, transformers and
sentence-transformers all read out; atomic writes; clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModel

from contrasent import SentenceEncoder
from contrasent.models.atomic_folder import atomic_folder
from contrasent.models.folders import MODEL_FOLDER


@pytest.fixture(scope="module")
def sts_sentences(data_dir) -> list[str]:
    """1000 sentences of STS-B (original release; fields 5 and 6 of TAB-split lines)."""
    sentences: list[str] = []
    with open(data_dir / "stsbenchmark" / "sts-dev.csv", encoding="utf-8") as file:
        for line in file:
            fields = line.rstrip("\n").split("\t")
            sentences += [fields[5], fields[6]]
    return sentences[:1000]


def sentence_transformer(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


@pytest.mark.slow
def test_encode_equals_sentence_transformers_on_minilm(minilm_dir, sts_sentences) -> None:
    ours = SentenceEncoder.from_pretrained(minilm_dir)  # read as a sentence-transformers folder
    assert (ours.config.pooling, ours.config.normalize, ours.config.max_seq_length) == ("mean", True, 256)
    theirs = sentence_transformer(minilm_dir).encode(sts_sentences, batch_size=32)
    assert np.abs(ours.encode(sts_sentences) - theirs).max() <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pooling", "head", "head_at_inference"),
    [("mean", False, True), ("cls", False, True), ("mean", True, True), ("cls", True, True), ("cls", True, False)],
)
def test_three_way_round_trip(minilm_dir, sts_sentences, tmp_path, pooling, head, head_at_inference) -> None:
    torch.manual_seed(0)  # the head starts random: any values will do, as long as everyone reads them
    encoder = SentenceEncoder.from_pretrained(minilm_dir, pooling=pooling, head=head,
                                              head_at_inference=head_at_inference)
    expected = encoder.encode(sts_sentences)
    encoder.save_pretrained(tmp_path / "model")

    # 1. contrasent: bit-identical
    reloaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert reloaded.config == encoder.config
    np.testing.assert_array_equal(reloaded.encode(sts_sentences), expected)
    if head:
        torch.testing.assert_close(reloaded.head.linear.weight, encoder.head.linear.weight, rtol=0, atol=0)

    # 2. transformers: the backbone
    backbone = AutoModel.from_pretrained(tmp_path / "model")
    for (name, ours), (_, theirs) in zip(encoder.backbone.state_dict().items(), backbone.state_dict().items()):
        torch.testing.assert_close(theirs, ours, rtol=0, atol=0, msg=name)

    # 3. sentence-transformers: the same embeddings
    theirs = sentence_transformer(tmp_path / "model").encode(sts_sentences, batch_size=32)
    assert np.abs(theirs - expected).max() <= 1e-5
    assert not list((tmp_path / "model").glob("*.bin")), "safetensors only"


@pytest.mark.parametrize("pooling", ["first_last_avg", "last2_avg"])
def test_pooling_without_sentence_transformers_equivalent_says_so(tiny_bert_dir, tmp_path, pooling) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling=pooling)
    encoder.save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "contrasent_config.json").read_text())
    assert config["sentence_transformers"] == {
        "compatible": False, "reason": f"pooling {pooling!r} has no sentence-transformers equivalent"}
    assert not (tmp_path / "model" / "modules.json").exists()
    reloaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    np.testing.assert_array_equal(reloaded.encode(["a b c", "d"]), encoder.encode(["a b c", "d"]))


def test_overrides_apply_on_load(tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="max", normalize=True, max_seq_length=16)
    assert (encoder.config.pooling, encoder.config.normalize, encoder.max_seq_length) == ("max", True, 16)


def test_reads_legacy_sentence_transformers_pooling_flags_and_dense(tiny_bert_dir, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer, models

    torch.manual_seed(0)
    transformer = models.Transformer(str(tiny_bert_dir), max_seq_length=64)
    pooling = models.Pooling(32, pooling_mode="max")
    dense = models.Dense(32, 16, activation_function=torch.nn.Tanh())
    st_model = SentenceTransformer(modules=[transformer, pooling, dense, models.Normalize()], device="cpu")
    st_model.save(str(tmp_path / "st"))
    ours = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert (ours.config.pooling, ours.config.head_dim, ours.config.normalize) == ("max", 16, True)
    texts = ["one sentence here", "and another, longer one over there"]
    np.testing.assert_allclose(ours.encode(texts), st_model.encode(texts), atol=1e-6)


def test_failed_save_leaves_the_previous_model_intact(tiny_bert_dir, tmp_path, monkeypatch) -> None:
    target = tmp_path / "model"
    first = SentenceEncoder.from_pretrained(tiny_bert_dir)
    first.save_pretrained(target)
    (target / "checkpoint-10").mkdir()  # a trainer's entry beside the model survives re-saves
    expected = first.encode(["kept"])

    second = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="cls")

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(second.tokenizer, "save_pretrained", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        second.save_pretrained(target)
    np.testing.assert_array_equal(SentenceEncoder.from_pretrained(target).encode(["kept"]), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no temporary folder left behind"

    monkeypatch.undo()
    second.save_pretrained(target)
    assert SentenceEncoder.from_pretrained(target).config.pooling == "cls"
    assert (target / "checkpoint-10").is_dir()


def test_atomic_folder_publishes_only_on_success(tmp_path) -> None:
    with atomic_folder(tmp_path / "out", MODEL_FOLDER) as staging:
        (staging / "a.txt").write_text("1")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "1"


def test_not_a_model_folder(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not a model folder: expected config.json"):
        SentenceEncoder.from_pretrained(tmp_path)


def test_missing_local_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SentenceEncoder.from_pretrained(tmp_path / "nope")


def test_unreachable_hub_fails_fast_with_advice(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="pass the path of a local model folder"):
        SentenceEncoder.from_pretrained("some-org/some-model")


def test_unsupported_sentence_transformers_module(tiny_bert_dir, tmp_path) -> None:
    shutil.copytree(tiny_bert_dir, tmp_path / "m")
    (tmp_path / "m" / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"},
    ]))
    with pytest.raises(ValueError, match=r"modules \['Transformer', 'Pooling', 'LayerNorm'\] are not supported"):
        SentenceEncoder.from_pretrained(tmp_path / "m")
