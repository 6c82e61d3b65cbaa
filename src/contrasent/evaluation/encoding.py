"""Encode a benchmark's texts with any model that has ``encode(list[str]) -> array``: each distinct text
once, longest first, with a progress bar.

The evaluators accept a :class:`contrasent.SentenceEncoder`, a ``sentence_transformers.SentenceTransformer``
or any object with an ``encode`` method taking a list of strings and returning an array-like of shape
``(len(texts), dim)`` (numpy array, torch tensor, or nested lists); calling it is
:func:`contrasent.models.encoding.encode_array`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from contrasent.models.encoding import Encoder, accepted_options, encode_array
from contrasent.search.index_checks import first_non_finite_row
from contrasent.search.text_checks import short_repr


def encode_texts(
    model: Encoder,
    texts: Sequence[str],
    batch_size: int = 32,
    show_progress_bar: bool = True,
    desc: str = "Encoding",
    prompt: str | None = None,
) -> np.ndarray:
    """Encode ``texts`` with ``model`` and return a float32 array of shape ``(len(texts), dim)``.

    Each distinct text is encoded once; texts are sent longest first, ``batch_size`` at a time (little
    padding per batch), with a progress bar counting the texts and their rate. ``prompt``: passed as
    ``encode(prompt=...)`` when the model takes it (contrasent and sentence-transformers then pool it as
    the model says), else put before each text; ``None``: the model's default prompt, if any.

    Raises:
        TypeError: ``model`` has no ``encode`` method.
        ValueError: ``model.encode`` returned something that is not ``(batch, dim)`` or not finite.
    """
    if not callable(getattr(model, "encode", None)):
        raise TypeError(f"expected a model with an encode(list[str]) method, got {type(model).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    options: dict[str, object] = {"batch_size": batch_size, "show_progress_bar": False}
    if prompt is not None and "prompt" in accepted_options(model, prompt=prompt):
        options["prompt"] = prompt
    elif prompt:
        texts = [prompt + text for text in texts]
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}
    order = sorted(range(len(unique)), key=lambda i: -len(unique[i]))

    from tqdm.auto import tqdm

    embeddings: np.ndarray | None = None
    # counts texts (not batches) with their rate, so a long encoding says how far it is and how fast it goes
    progress = tqdm(total=len(unique), desc=desc, disable=not show_progress_bar, unit="text")
    for start in range(0, len(order), batch_size):
        batch_index = order[start : start + batch_size]
        batch = [unique[i] for i in batch_index]
        output = encode_array(model, batch, **options)
        bad_row = first_non_finite_row(output)
        if bad_row is not None:
            raise ValueError(f"{type(model).__name__}.encode returned non-finite values (NaN or inf) for the text "
                             f"{short_repr(batch[bad_row])}")
        if embeddings is None:
            embeddings = np.empty((len(unique), output.shape[1]), dtype=np.float32)
        embeddings[batch_index] = output
        progress.update(len(batch))
    progress.close()
    if embeddings is None:
        raise ValueError("no texts to encode")
    return embeddings[[position[text] for text in texts]]
