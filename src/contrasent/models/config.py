"""`EncoderConfig`: what sits on top of the backbone (pooling, head, normalization), saved as JSON.

Plain data only, no torch: the names of the pooling modes live here (the computations are in
:mod:`contrasent.models.pooling`), so that reading or validating settings never loads torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

POOLING_MODES: tuple[str, ...] = ("cls", "mean", "max", "first_last_avg", "last2_avg", "last_token")

# Our names -> the ``pooling_mode_*`` flag of sentence-transformers' Pooling config.
SENTENCE_TRANSFORMERS_POOLING_FLAGS: dict[str, str] = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "last_token": "pooling_mode_lasttoken",
}

HEAD_ACTIVATIONS: tuple[str, ...] = ("tanh", "identity")


def check_pooling_mode(mode: str) -> str:
    """Return ``mode`` if it is a known pooling strategy, else raise a ``ValueError`` listing the valid ones."""
    if mode not in POOLING_MODES:
        raise ValueError(f"unknown pooling {mode!r}; valid pooling modes are: {', '.join(POOLING_MODES)}")
    return mode


def check_prompts(prompts: Any, default_prompt_name: Any) -> None:
    """Raise a ``TypeError`` or ``ValueError`` unless ``prompts`` maps names to prompt strings and
    ``default_prompt_name`` is ``None`` or one of its names."""
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise TypeError(f"prompts must map prompt names to prompt strings, e.g. {{\"query\": \"query: \"}}; "
                        f"got {prompts!r}")
    if default_prompt_name is not None and default_prompt_name not in prompts:
        if not isinstance(default_prompt_name, str):
            raise TypeError(f"default_prompt_name must be a prompt name or null, got {default_prompt_name!r}")
        raise ValueError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts' names "
                         f"{sorted(prompts)}")


@dataclass
class EncoderConfig:
    """Configuration of a :class:`~contrasent.SentenceEncoder` beyond its transformers backbone.

    Attributes:
        pooling: one of ``cls``, ``mean``, ``max``, ``first_last_avg``, ``last2_avg``, ``last_token``.
        normalize: L2-normalize the output embeddings.
        head: put a projection head on the pooled vector: ``activation(W x + b)``, SimCSE's MLP
            (``Linear`` + ``Tanh``).
        head_dim: output size of the head; ``None`` keeps the backbone's hidden size.
        head_activation: ``tanh`` (SimCSE) or ``identity`` (a plain linear projection).
        head_at_inference: apply the head outside training too. ``False`` is unsupervised SimCSE's
            setting: the head shapes the training objective, and is dropped when encoding.
        max_seq_length: texts are truncated to this many tokens; ``None`` takes the tokenizer's limit
            (capped by the backbone's position embeddings).
        prompts: named prompts, ``{"query": "query: ", "document": "passage: "}``: the text that
            ``encode(..., prompt_name=name)`` prepends to every text (sentence-transformers' ``prompts``).
        default_prompt_name: the prompt ``encode`` prepends when it is given none (a key of ``prompts``);
            ``None``: no prompt.
        include_prompt: pool the prompt's tokens with the text's (sentence-transformers' Pooling option).
            ``False`` leaves them out of the pooling (they still pass through the backbone, as context).
        truncate_dim: ``encode`` keeps the first ``truncate_dim`` dimensions of each embedding (a
            Matryoshka model); ``None`` keeps all. Checked against the model's dimension when it is built.
    """

    pooling: str = "mean"
    normalize: bool = False
    head: bool = False
    head_dim: int | None = None
    head_activation: str = "tanh"
    head_at_inference: bool = True
    max_seq_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    include_prompt: bool = True
    truncate_dim: int | None = None

    def __post_init__(self) -> None:
        # A JSON "false" written as a string is truthy: check types, so a setting is honoured as meant.
        for name in ("normalize", "head", "head_at_inference", "include_prompt"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("head_dim", "max_seq_length", "truncate_dim"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be a positive integer or null, got {value!r}")
        if not isinstance(self.pooling, str):
            raise TypeError(f"pooling must be a string, one of {', '.join(POOLING_MODES)}; got {self.pooling!r}")
        check_pooling_mode(self.pooling)
        if self.head_activation not in HEAD_ACTIVATIONS:
            raise ValueError(
                f"head_activation must be one of {', '.join(HEAD_ACTIVATIONS)}, got {self.head_activation!r}"
            )
        if self.head_dim is not None and self.head_dim <= 0:
            raise ValueError(f"head_dim must be a positive integer, got {self.head_dim}")
        if self.max_seq_length is not None and self.max_seq_length <= 0:
            raise ValueError(f"max_seq_length must be a positive integer, got {self.max_seq_length}")
        if self.truncate_dim is not None and self.truncate_dim <= 0:
            raise ValueError(f"truncate_dim must be a positive integer, got {self.truncate_dim}")
        check_prompts(self.prompts, self.default_prompt_name)

    @property
    def head_used_at_inference(self) -> bool:
        """Whether encoding (eval mode) passes through the head."""
        return self.head and self.head_at_inference

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        """JSON of the settings; transformers' logging callbacks (tensorboard) record a model's config this way."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> EncoderConfig:
        """Build from a dict, refusing unknown keys and bad values with a ``ValueError`` naming them and ``source``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown encoder setting(s) {unknown}; valid ones are {sorted(known)}")
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:  # a bad value in a file or a setting: a ValueError
            raise ValueError(f"{source}: {error}") from None

    def replace(self, source: str = "overrides", **overrides: Any) -> EncoderConfig:
        """A copy with ``overrides`` applied (validated like the constructor; errors name ``source``)."""
        return self.from_dict({**self.to_dict(), **overrides}, source=source)
