"""The model card written with every save: metadata the Hub parses, and usage code that runs.

The usage code blocks are executed against the saved folder: the transformers one (pooling, head and
normalization written out) must reproduce ``SentenceEncoder.encode``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from huggingface_hub import ModelCard

from contrasent import SentenceEncoder
from contrasent.models.card import CardData

SENTENCES = ["A man is playing a guitar.", "Someone is playing music.", "The stock market fell today."]


def code_block(card_text: str, heading: str) -> str:
    section = card_text.split(f"### {heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under {heading}"
    return match.group(1)


def run_block(code: str) -> np.ndarray:
    namespace: dict = {}
    exec(compile(code, "<model card>", "exec"), namespace)  # noqa: S102 (the card's own code, on purpose)
    return np.asarray(namespace["embeddings"], dtype=np.float32)


@pytest.mark.parametrize("settings", [
    {"pooling": "mean", "normalize": True},
    {"pooling": "cls", "head": True, "head_dim": 16, "normalize": True},
    {"pooling": "max", "head": True, "head_activation": "identity"},
    {"pooling": "first_last_avg"},
], ids=["mean-norm", "cls-head-norm", "max-linear", "first_last_avg"])
def test_transformers_usage_code_reproduces_encode(tiny_bert_dir, tmp_path, settings) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, **settings)
    encoder.save_pretrained(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    expected = encoder.encode(SENTENCES)
    assert np.abs(run_block(code_block(card, "transformers")) - expected).max() < 1e-5
    assert np.abs(run_block(code_block(card, "contrasent")) - expected).max() < 1e-6


def test_sentence_transformers_usage_code_runs(tiny_bert_dir, tmp_path) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="cls", head=True, head_dim=16, normalize=True)
    encoder.save_pretrained(tmp_path / "model")
    card = (tmp_path / "model" / "README.md").read_text()
    embeddings = run_block(code_block(card, "sentence-transformers"))
    assert np.abs(embeddings - encoder.encode(SENTENCES)).max() < 1e-5


def test_card_metadata_parses_and_card_data_survives_a_reload(tiny_bert_dir, tmp_path) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    encoder.card_data = CardData(
        model_name="tiny-simcse", base_model="prajjwal1/bert-tiny", datasets=["wiki1m"],
        objective="InfoNCE, two dropout views (unsupervised SimCSE)",
        hyperparameters={"learning_rate": 3e-5, "batch_size": 64, "temperature": 0.05},
        evaluation={"STS-B dev": {"spearman": 82.1, "pearson": 80.0}, "scifact": {"ndcg@10": 64.5}},
        language=["en"], license="apache-2.0", tags=["simcse"],
    )
    encoder.save_pretrained(tmp_path / "model", model_id="me/tiny-simcse")
    card = ModelCard.load(tmp_path / "model" / "README.md", ignore_metadata_errors=False)
    data = card.data
    assert (data.library_name, data.pipeline_tag, data.license) == (
        "sentence-transformers", "sentence-similarity", "apache-2.0")
    assert {"sentence-transformers", "contrasent", "simcse"} <= set(data.tags)
    tasks = {(r.dataset_name, r.metric_type): r.task_type for r in data.eval_results}
    assert tasks == {("STS-B dev", "spearman"): "sentence-similarity", ("STS-B dev", "pearson"): "sentence-similarity",
                     ("scifact", "ndcg@10"): "text-retrieval"}
    assert "| STS-B dev | spearman | 82.10 |" in card.text
    assert "| `temperature` | `0.05` |" in card.text
    assert "unsupervised SimCSE" in card.text

    reloaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert reloaded.card_data == encoder.card_data


def test_card_of_a_model_sentence_transformers_cannot_read(tiny_bert_dir, tmp_path) -> None:
    SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="last2_avg").save_pretrained(tmp_path / "model")
    card = ModelCard.load(tmp_path / "model" / "README.md")
    assert card.data.library_name == "transformers"
    assert "sentence-transformers" not in card.data.tags
    assert "Not supported: pooling 'last2_avg' has no sentence-transformers equivalent" in card.text


def test_card_data_errors_name_the_field(tmp_path) -> None:
    with pytest.raises(TypeError, match=r"evaluation\['sts'\]\['spearman'\] must be a number"):
        CardData(evaluation={"sts": {"spearman": "high"}})
    with pytest.raises(ValueError, match=r"unknown card field\(s\) \['learning_rate'\]"):
        CardData.from_dict({"learning_rate": 1e-5})
    (tmp_path / "contrasent_card.json").write_text("{oops")
    from contrasent.models.card import load_card_data

    with pytest.raises(ValueError, match="contrasent_card.json: not valid JSON"):
        load_card_data(tmp_path)
