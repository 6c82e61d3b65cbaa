"""Prompts: which one a text gets, and how many of its tokens the pooling leaves out.

A prompt is a string prepended to each text before tokenizing (``"query: "``, ``"passage: "``), as
sentence-transformers does. The rules here are sentence-transformers' own (``SentenceTransformer.encode``,
``encode_query``, ``encode_document`` and ``Transformer._get_prompt_length`` in 6.2), so that a folder
gives the same embeddings in both libraries:

- :func:`resolve_prompt`: an explicit ``prompt``, else the named one, else the model's default prompt;
- :func:`role_prompt`: the prompt a query or a document gets in retrieval: a given prompt or name, else
  the model's ``"query"`` prompt for queries and its first of ``"document"``, ``"passage"``, ``"corpus"``
  for documents;
- :func:`prompt_token_count`: the tokens of the prompt tokenized alone, special tokens included, less a
  trailing special token: the leading positions that ``include_prompt=False`` leaves out of the pooling
  (a BERT ``[CLS]`` with them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The prompt names sentence-transformers' encode_query / encode_document look for, in order.
ROLE_PROMPT_NAMES: dict[str, tuple[str, ...]] = {
    "query": ("query",),
    "document": ("document", "passage", "corpus"),
}


def resolve_prompt(
    prompts: Mapping[str, str], default_prompt_name: str | None, prompt: str | None, prompt_name: str | None
) -> str | None:
    """The prompt ``encode`` prepends: ``prompt``, else ``prompts[prompt_name]``, else the default prompt.

    Raises:
        ValueError: both ``prompt`` and ``prompt_name`` are given (sentence-transformers warns and uses
            ``prompt``; here it is an error), or ``prompt_name`` is not one of ``prompts`` (the names are listed).
        TypeError: ``prompt`` or ``prompt_name`` is not a string.
    """
    if prompt is not None and prompt_name is not None:
        raise ValueError(f"give prompt or prompt_name, not both (got prompt={prompt!r}, prompt_name={prompt_name!r})")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__} {prompt!r}")
        return prompt
    if prompt_name is not None:
        if not isinstance(prompt_name, str):
            raise TypeError(f"prompt_name must be a string, got {type(prompt_name).__name__} {prompt_name!r}")
        if prompt_name not in prompts:
            raise ValueError(f"prompt_name {prompt_name!r} is not one of this model's prompts: "
                             f"{sorted(prompts) or 'it has none'}")
        return prompts[prompt_name]
    return prompts.get(default_prompt_name) if default_prompt_name is not None else None


def model_prompts(model: Any) -> dict[str, str]:
    """The named prompts of any model: ``model.prompts`` (contrasent and sentence-transformers), else none."""
    prompts = getattr(model, "prompts", None)
    return dict(prompts) if isinstance(prompts, Mapping) else {}


def role_prompt(model: Any, role: str, prompt: str | None = None, prompt_name: str | None = None) -> str | None:
    """The prompt for the texts of ``role`` (``"query"`` or ``"document"``) in retrieval and search.

    ``prompt`` (a string, ``""`` for none) or ``prompt_name`` (which ``model`` must have) when given; else the
    model's prompt of the role's name (:data:`ROLE_PROMPT_NAMES`, as sentence-transformers' ``encode_query``
    and ``encode_document`` choose it); else ``None``: the model's default prompt, if any, applies.

    Raises:
        ValueError: both are given, or ``model`` has no prompt named ``prompt_name`` (its names are listed).
    """
    prompts = model_prompts(model)
    if prompt is not None or prompt_name is not None:
        return resolve_prompt(prompts, None, prompt, prompt_name)
    for name in ROLE_PROMPT_NAMES[role]:
        if name in prompts:
            return prompts[name]
    return None


def prompt_token_count(tokenizer: Any, prompt: str) -> int:
    """How many leading tokens of ``prompt + text`` are the prompt's, as sentence-transformers counts them:
    the prompt tokenized alone with its special tokens, less a trailing special token (``[SEP]``, ``</s>``)."""
    ids = tokenizer(prompt, return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    if ids and ids[-1] in set(tokenizer.all_special_ids):
        return len(ids) - 1
    return len(ids)
