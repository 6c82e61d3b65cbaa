"""Load every weight a model folder says it has, or say which file is wrong.

transformers initialises a parameter the checkpoint lacks at random and only prints a report; a
truncated safetensors file fails with a message that names no file. ``SentenceEncoder.from_pretrained``
loads through this module instead, so that a model either loads whole or raises naming the file, the
parameter and the shape it expected:

- :func:`check_weight_files`: every ``*.safetensors`` file of the folder has a readable header that its
  data covers (a truncated or damaged file is named before transformers opens it);
- :func:`load_backbone`: ``AutoModel.from_pretrained``, then every parameter present in the checkpoint
  with its shape. The one exception is the pooler (BERT's ``pooler.dense``), which MLM checkpoints such
  as RoBERTa's lack and which contrasent never runs;
- :func:`load_tokenizer`: the tokenizer, with the folder named if it cannot be read;
- :func:`load_head`: the projection head's weights, all of them, with the head's shapes;
- :func:`check_lower_casing`: sentence-transformers' ``do_lower_case`` is honoured only by a tokenizer
  that lower-cases by itself.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contrasent.models.folders import read_json

logger = logging.getLogger(__name__)

_UNUSED_MODULES = ("pooler",)  # never run by contrasent's pooling: absent from MLM checkpoints
_SHOWN = 3


def check_weight_files(folder: Path) -> None:
    """Raise an ``OSError`` naming the first ``*.safetensors`` file in ``folder`` that cannot be read."""
    for path in sorted(folder.glob("*.safetensors")):
        _open_safetensors(path)


def _open_safetensors(path: Path) -> list[str]:
    """The tensor names of a safetensors file; its header is parsed and checked against the file's size."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            return list(file.keys())
    except Exception as error:  # SafetensorError, OSError ...: all mean "this file is damaged"
        raise OSError(f"{path}: cannot read the weights ({error}); the file is truncated or damaged: "
                      "save or download the model again") from error


def load_backbone(folder: Path, settings: Collection[str] = (), **kwargs: Any) -> nn.Module:
    """``AutoModel.from_pretrained(folder, **kwargs)`` that refuses to initialise a parameter at random.

    ``ignore_mismatched_sizes=True`` in ``kwargs`` lets parameters of another shape start at random,
    as in transformers (the user asked for it). ``settings``: the names the caller takes itself,
    suggested when the model rejects a keyword argument (a misspelled ``normalise``).

    Raises:
        OSError: a weights file is truncated or damaged (named).
        TypeError: a keyword argument the model does not take (named, with the closest of ``settings``).
        ValueError: the checkpoint lacks parameters of the architecture ``config.json`` names, or holds
            them with other shapes: the parameters, found and expected shapes and the files are named.
    """
    from transformers import AutoModel

    check_weight_files(folder)
    allow_mismatch = kwargs.pop("ignore_mismatched_sizes", False)
    try:
        model, info = AutoModel.from_pretrained(folder, output_loading_info=True, ignore_mismatched_sizes=True,
                                                **kwargs)
    except TypeError as error:
        raise _unexpected_argument(error, kwargs, settings) from error
    files = _weight_files(folder)
    missing = sorted(key for key in info.get("missing_keys", ())
                     if not any(part in _UNUSED_MODULES for part in key.split(".")))
    if missing:
        shapes = model.state_dict()
        described = [f"{key} {tuple(shapes[key].shape) if key in shapes else ''}".strip() for key in missing]
        raise ValueError(f"{files}: {len(missing)} parameter(s) of {type(model).__name__} (as {folder / 'config.json'} "
                         f"describes it) are not in the weights: {_first(described)}; the file is incomplete or "
                         "belongs to another model")
    mismatched = sorted(info.get("mismatched_keys", ()), key=lambda item: item[0])
    if mismatched and not allow_mismatch:
        described = [f"{key} has shape {tuple(found)}, expected {tuple(expected)}"
                     for key, found, expected in mismatched]
        raise ValueError(f"{files}: {len(mismatched)} parameter(s) have another shape than {folder / 'config.json'} "
                         f"describes: {_first(described)}")
    return model


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> Any:
    """``AutoTokenizer.from_pretrained(folder)``, naming the folder when its tokenizer files cannot be read."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as error:  # tokenizers' Rust errors have no common type; all mean "unreadable"
        raise OSError(f"{folder}: cannot load the tokenizer ({type(error).__name__}: {error}); its tokenizer "
                      "files (tokenizer.json, tokenizer_config.json, vocabulary) are damaged or missing") from error


def load_head(head: nn.Module, path: Path) -> None:
    """Load the projection head's weights from ``path``: every parameter, each with the head's shape.

    ``path`` is a safetensors file, or (sentence-transformers < 3) a ``pytorch_model.bin`` read with
    ``torch.load(weights_only=True)``, which refuses anything but tensors.

    Raises:
        FileNotFoundError: ``path`` is missing (the folder's settings say the model has a head).
        OSError: ``path`` is truncated or damaged.
        ValueError: a parameter is missing, unexpected, or of another shape (found and expected named).
    """
    expected = {name: tuple(tensor.shape) for name, tensor in head.state_dict().items()}
    wanted = ", ".join(f"{name} {shape}" for name, shape in expected.items())
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the model's settings say it has a projection head, whose "
                                f"weights ({wanted}) that file holds")
    state = _read_weights(path)
    problems = [f"{name} is missing" for name in expected if name not in state]
    problems += [f"{name} is not a parameter of the head" for name in state if name not in expected]
    problems += [f"{name} has shape {tuple(state[name].shape)}, expected {shape}"
                 for name, shape in expected.items() if name in state and tuple(state[name].shape) != shape]
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)} (the head's settings give {wanted})")
    head.load_state_dict(state)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".bin":
        logger.warning("%s is a legacy PyTorch pickle: loading it with torch.load(weights_only=True), which "
                       "refuses anything but tensors", path)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # an unpickling error, a truncated zip ...
            raise OSError(f"{path}: cannot read the weights ({error})") from error
    from safetensors.torch import load_file

    _open_safetensors(path)
    return load_file(path)


def check_lower_casing(backbone_dir: Path, tokenizer: Any) -> None:
    """sentence-transformers' ``do_lower_case: true`` lower-cases texts before tokenizing; contrasent does not,
    so such a folder loads only when its tokenizer lower-cases by itself (then the setting changes nothing).

    Raises:
        ValueError: the folder's ``sentence_bert_config.json`` asks for lower-casing and the tokenizer
            tells upper from lower case.
    """
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        path = backbone_dir / name
        if path.is_file():
            lowers = tokenizer("The QUICK Fox")["input_ids"] == tokenizer("the quick fox")["input_ids"]
            if read_json(path).get("do_lower_case") and not lowers:
                raise ValueError(f"{path}: do_lower_case is true, so sentence-transformers lower-cases every text "
                                 "before tokenizing; contrasent does not, and this tokenizer is case-sensitive")
            return


def _unexpected_argument(error: TypeError, kwargs: dict[str, Any], settings: Collection[str]) -> TypeError:
    """The model's "unexpected keyword argument" error, with the argument named and the closest setting."""
    named = [key for key in kwargs if f"'{key}'" in str(error)]
    if not named:
        return error
    close = difflib.get_close_matches(named[0], list(settings), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return TypeError(f"from_pretrained got an unexpected argument {named[0]!r}: neither an encoder setting "
                     f"({', '.join(sorted(settings))}) nor an argument of the model ({error}){hint}")


def _weight_files(folder: Path) -> str:
    files = sorted(path.name for path in folder.glob("*.safetensors")) or sorted(
        path.name for path in folder.glob("*.bin"))
    return f"{folder}/{files[0]}" if len(files) == 1 else f"{folder} ({', '.join(files) or 'no weight files'})"


def _first(items: list[str]) -> str:
    return "; ".join(items[:_SHOWN]) + (f"; and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")
