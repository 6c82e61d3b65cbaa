"""Model cards: the ``README.md`` saved with every model, with metadata the Hugging Face Hub reads.

A card has two parts:

- YAML front matter: ``library_name``, ``pipeline_tag: sentence-similarity``, ``tags``, ``base_model``,
  ``datasets``, ``license``, ``language`` and ``model-index`` (the evaluation results, one entry per
  data set and metric), written through ``huggingface_hub.ModelCardData`` so the Hub parses it;
- a body: what the model is (backbone, pooling, head, normalization), how it was trained (objective,
  hyperparameters), evaluation tables, and usage with contrasent, sentence-transformers and plain
  transformers (the pooling written out, so the embeddings can be reproduced without either library).

What the encoder cannot know about itself (how it was trained, on what, with what results) comes from
:class:`CardData`, which the trainer fills and which is saved beside the model (``contrasent_card.json``)
so that a reloaded model keeps it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrasent.models.config import EncoderConfig

CARD_DATA_NAME = "contrasent_card.json"
CARD_NAME = "README.md"

# metric name prefix -> model-index task type
_RETRIEVAL_METRICS = ("ndcg", "map", "mrr", "recall", "precision", "hit", "accuracy@")
_EXAMPLE_SENTENCES = ["A man is playing a guitar.", "Someone is playing music.", "The stock market fell today."]


@dataclass
class CardData:
    """What the model card says beyond the encoder's own settings (the trainer fills it).

    Attributes:
        model_name: the card's title (default: the repository or folder name).
        base_model: Hub id of the checkpoint training started from (``"bert-base-uncased"``).
        datasets: Hub ids or names of the training data.
        objective: the training objective in words, e.g. ``"InfoNCE over in-batch negatives, two
            dropout views of each sentence (unsupervised SimCSE)"``.
        hyperparameters: name -> value (learning rate, batch size, temperature, epochs ...).
        evaluation: data set -> metric -> value, e.g.
            ``{"STS-B dev": {"spearman": 82.1}, "scifact": {"ndcg@10": 64.5}}``. Metrics named like
            ``ndcg@10``, ``map``, ``mrr``, ``recall@k`` are filed as retrieval results, others as
            sentence similarity.
        language: language codes (``["en"]``).
        license: an SPDX-like identifier the Hub knows (``"apache-2.0"``).
        tags: extra Hub tags.
    """

    model_name: str | None = None
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    objective: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)
    language: list[str] = field(default_factory=list)
    license: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for dataset, metrics in self.evaluation.items():
            if not isinstance(metrics, dict):
                raise TypeError(
                    f"evaluation[{dataset!r}] must be a dict of metric -> number, got {type(metrics).__name__}"
                )
            for metric, value in metrics.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"evaluation[{dataset!r}][{metric!r}] must be a number, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "card data") -> CardData:
        """Build from a dict, refusing unknown keys (naming them and ``source``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown card field(s) {unknown}; valid ones are {sorted(known)}")
        return cls(**values)


def save_card_data(folder: Path, card: CardData) -> None:
    with open(folder / CARD_DATA_NAME, "w", encoding="utf-8") as file:
        json.dump(card.to_dict(), file, indent=2)
        file.write("\n")


def load_card_data(folder: Path) -> CardData:
    """The folder's :class:`CardData`, or an empty one when the folder has none (e.g. not saved by us)."""
    path = folder / CARD_DATA_NAME
    if not path.is_file():
        return CardData()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    return CardData.from_dict(values, source=str(path))


@dataclass(frozen=True)
class ModelFacts:
    """What the card states about the saved model itself (taken from the encoder at save time)."""

    model_id: str
    config: EncoderConfig
    embedding_dim: int
    hidden_size: int
    backbone_class: str
    sentence_transformers_incompatibility: str | None


def render_model_card(facts: ModelFacts, card: CardData) -> str:
    """The text of ``README.md``: YAML front matter, then the body (see the module docstring)."""
    metadata = _metadata(facts, card)
    body = "\n\n".join(part for part in (
        _header(facts, card), _details(facts), _training(card), _evaluation(card), _usage(facts),
    ) if part)
    return f"---\n{metadata.to_yaml()}\n---\n\n{body}\n"


def _model_name(facts: ModelFacts, card: CardData) -> str:
    return card.model_name or Path(facts.model_id.rstrip("/")).name or "sentence-encoder"


def _task_type(metric: str) -> tuple[str, str]:
    if metric.lower().startswith(_RETRIEVAL_METRICS):
        return "text-retrieval", "Retrieval"
    return "sentence-similarity", "Semantic similarity"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset"


def _metadata(facts: ModelFacts, card: CardData) -> Any:
    from huggingface_hub import EvalResult, ModelCardData

    st_compatible = facts.sentence_transformers_incompatibility is None
    base_tags = ["sentence-transformers"] if st_compatible else []
    tags = list(dict.fromkeys([*base_tags, "sentence-similarity", "feature-extraction", "contrasent", *card.tags]))
    results = [
        EvalResult(
            task_type=_task_type(metric)[0], task_name=_task_type(metric)[1],
            dataset_type=_slug(dataset), dataset_name=dataset, metric_type=metric, metric_name=metric,
            metric_value=float(value),
        )
        for dataset, metrics in card.evaluation.items()
        for metric, value in metrics.items()
    ]
    return ModelCardData(
        # The Hub has no "contrasent" library; the folder is a sentence-transformers one when the pooling
        # allows, which gives users the Hub's sentence-transformers snippets and widget.
        library_name="sentence-transformers" if st_compatible else "transformers",
        pipeline_tag="sentence-similarity",
        tags=tags,
        base_model=card.base_model,
        datasets=card.datasets or None,
        language=card.language or None,
        license=card.license,
        model_name=_model_name(facts, card),
        eval_results=results or None,
    )


def _header(facts: ModelFacts, card: CardData) -> str:
    base = f", fine-tuned from [{card.base_model}](https://huggingface.co/{card.base_model})" if card.base_model else ""
    return (
        f"# {_model_name(facts, card)}\n\n"
        f"A sentence encoder trained with contrasent{base}. "
        f"It maps sentences and paragraphs to {facts.embedding_dim}-dimensional vectors for semantic search, "
        "clustering and similarity."
    )


def _details(facts: ModelFacts) -> str:
    config = facts.config
    if config.head_used_at_inference:
        head = f"Linear {facts.hidden_size} → {config.head_dim or facts.hidden_size} + {config.head_activation}"
    elif config.head:
        head = "used in training only (saved in `2_Dense/`, not applied when encoding)"
    else:
        head = "none"
    reason = facts.sentence_transformers_incompatibility
    rows = [
        ("Backbone", f"`{facts.backbone_class}`"),
        ("Pooling", f"`{config.pooling}`"),
        ("Projection head", head),
        ("L2-normalized", "yes" if config.normalize else "no"),
        ("Embedding dimension", str(facts.embedding_dim)),
        ("Max sequence length", f"{config.max_seq_length} tokens"),
        ("Similarity", "cosine"),
        ("Reads in sentence-transformers", "yes" if reason is None else f"no: {reason}"),
    ]
    return "## Model details\n\n| | |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in rows)


def _training(card: CardData) -> str:
    if not (card.objective or card.hyperparameters or card.datasets):
        return ""
    lines = ["## Training"]
    if card.objective:
        lines.append(f"Objective: {card.objective}")
    if card.datasets:
        lines.append("Data: " + ", ".join(f"`{name}`" for name in card.datasets))
    if card.hyperparameters:
        rows = "\n".join(f"| `{name}` | `{value}` |" for name, value in card.hyperparameters.items())
        lines.append(f"| hyperparameter | value |\n|---|---|\n{rows}")
    return "\n\n".join(lines)


def _evaluation(card: CardData) -> str:
    if not card.evaluation:
        return ""
    tables = ["## Evaluation"]
    for task_name in ("Semantic similarity", "Retrieval"):
        rows = [(dataset, metric, value)
                for dataset, metrics in card.evaluation.items()
                for metric, value in metrics.items()
                if _task_type(metric)[1] == task_name]
        if rows:
            lines = "\n".join(f"| {dataset} | {metric} | {value:.2f} |" for dataset, metric, value in rows)
            tables.append(f"### {task_name}\n\n| data set | metric | value |\n|---|---|---:|\n{lines}")
    return "\n\n".join(tables)


def _usage(facts: ModelFacts) -> str:
    sentences = json.dumps(_EXAMPLE_SENTENCES)
    model_id = json.dumps(facts.model_id)
    parts = [
        "## Usage",
        "### contrasent",
        ("```python\n"
         "from contrasent import SentenceEncoder\n\n"
         f"model_id = {model_id}\n"
         "encoder = SentenceEncoder.from_pretrained(model_id)\n"
         f"embeddings = encoder.encode({sentences})\n"
         "print(embeddings.shape)\n"
         "```"),
    ]
    parts.append("### sentence-transformers")
    if facts.sentence_transformers_incompatibility is None:
        parts.append(
            "```python\n"
            "from sentence_transformers import SentenceTransformer\n\n"
            f"model_id = {model_id}\n"
            "model = SentenceTransformer(model_id)\n"
            f"embeddings = model.encode({sentences})\n"
            "print(model.similarity(embeddings, embeddings))\n"
            "```"
        )
    else:
        parts.append(
            f"Not supported: {facts.sentence_transformers_incompatibility}. sentence-transformers would read "
            "this folder as a plain checkpoint with mean pooling and produce different embeddings; use "
            "contrasent or the transformers code below."
        )
    parts += ["### transformers", _transformers_snippet(facts)]
    return "\n\n".join(parts)


_POOLING_CODE = {
    "cls": "embeddings = output.last_hidden_state[:, 0]",
    "mean": (
        "mask = batch[\"attention_mask\"].unsqueeze(-1).float()\n"
        "embeddings = (output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)"
    ),
    "max": (
        "padding = (batch[\"attention_mask\"] == 0).unsqueeze(-1)\n"
        "embeddings = output.last_hidden_state.masked_fill(padding, torch.finfo(torch.float32).min).amax(1)"
    ),
    "last_token": (
        "positions = torch.arange(batch[\"attention_mask\"].shape[1])\n"
        "last = (batch[\"attention_mask\"] * positions).argmax(1)  # the last real token, any padding side\n"
        "embeddings = output.last_hidden_state[torch.arange(len(last)), last]"
    ),
    "first_last_avg": (
        "# hidden_states[0] is the embedding layer; [1] the first transformer layer, [-1] the last\n"
        "tokens = (output.hidden_states[1] + output.hidden_states[-1]) / 2\n"
        "mask = batch[\"attention_mask\"].unsqueeze(-1).float()\n"
        "embeddings = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)"
    ),
    "last2_avg": (
        "tokens = (output.hidden_states[-2] + output.hidden_states[-1]) / 2\n"
        "mask = batch[\"attention_mask\"].unsqueeze(-1).float()\n"
        "embeddings = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)"
    ),
}


def _transformers_snippet(facts: ModelFacts) -> str:
    config = facts.config
    all_layers = config.pooling in ("first_last_avg", "last2_avg")
    imports = ["import torch"]
    if config.head_used_at_inference:
        imports.append("from safetensors.torch import load_file")
    imports.append("from transformers import AutoModel, AutoTokenizer")
    if config.head_used_at_inference:
        imports.append("from transformers.utils import cached_file")
    lines = [
        *imports, "",
        f"model_id = {json.dumps(facts.model_id)}",
        "tokenizer = AutoTokenizer.from_pretrained(model_id)",
        "model = AutoModel.from_pretrained(model_id).eval()",
        "",
        f"sentences = {json.dumps(_EXAMPLE_SENTENCES)}",
        (f"batch = tokenizer(sentences, padding=True, truncation=True, max_length={config.max_seq_length}, "
         "return_tensors=\"pt\")"),
        "with torch.no_grad():",
        "    output = model(**batch" + (", output_hidden_states=True)" if all_layers else ")"),
        "",
        f"# pooling: {config.pooling}",
        _POOLING_CODE[config.pooling],
    ]
    if config.head_used_at_inference:
        activation = "torch.tanh(" if config.head_activation == "tanh" else "("
        lines += [
            "",
            f"# projection head: {config.head_activation}(W x + b), weights in 2_Dense/",
            "head = load_file(cached_file(model_id, \"2_Dense/model.safetensors\"))",
            f"embeddings = {activation}embeddings @ head[\"linear.weight\"].T + head[\"linear.bias\"])",
        ]
    if config.normalize:
        lines += ["embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)"]
    else:
        lines += ["# the model is not normalized: use cosine similarity (normalize first) to compare"]
    lines.append("print(embeddings.shape)")
    return "```python\n" + "\n".join(lines) + "\n```"
