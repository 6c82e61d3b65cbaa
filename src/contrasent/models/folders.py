"""Model folders: find them, read the three layouts, write one layout that every tool reads.

Layouts read by :func:`read_encoder_config`:

1. contrasent's own: ``contrasent_config.json`` beside a transformers checkpoint;
2. sentence-transformers: ``modules.json`` listing Transformer / Pooling / Dense / Normalize modules;
3. a plain transformers checkpoint (``config.json``): mean pooling unless overridden.

A folder written by :func:`write_sentence_transformers_files` plus the backbone's own
``save_pretrained`` holds all three at once (see ``SentenceEncoder.save_pretrained``), written atomically
by :mod:`contrasent.models.atomic_folder`, which replaces only what :data:`MODEL_FOLDER` says is a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# atomic_folder is re-exported for the deprecated path contrasent.model_io (see contrasent._moved)
from contrasent.models.atomic_folder import FolderKind, atomic_folder
from contrasent.models.card import CARD_DATA_NAME, CARD_NAME
from contrasent.models.config import SENTENCE_TRANSFORMERS_POOLING_FLAGS, EncoderConfig

__all__ = [
    "CONTRASENT_CONFIG_NAME", "HEAD_DIR", "HEAD_WEIGHTS_NAME", "MODEL_FOLDER", "atomic_folder", "check_model_dir",
    "read_encoder_config", "read_json", "resolve_model_dir", "sentence_transformers_incompatibility",
    "write_contrasent_config", "write_head_config", "write_sentence_transformers_files",
]

CONTRASENT_CONFIG_NAME = "contrasent_config.json"
HEAD_DIR = "2_Dense"
HEAD_WEIGHTS_NAME = "model.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_model.bin"

# What ``SentenceEncoder.save_pretrained`` writes (see contrasent.models.atomic_folder): a folder holding
# contrasent_config.json is an earlier save, replaced by the next; these entries of it are dropped when the
# new save does not write them again (weights in other shards, sentence-transformers files of another
# pooling, another tokenizer's files); anything else in it (checkpoints, notes) is kept.
MODEL_FOLDER = FolderKind(
    name="model",
    marker=CONTRASENT_CONFIG_NAME,
    artifacts=(
        CONTRASENT_CONFIG_NAME, CARD_DATA_NAME, CARD_NAME, "config.json", "generation_config.json",
        "*.safetensors", "*.safetensors.index.json", "modules.json", "sentence_bert_config.json",
        "config_sentence_transformers.json", "1_Pooling", HEAD_DIR, "[23]_Normalize",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.txt", "vocab.json", "merges.txt", "*.model", "chat_template.j*",
    ),
)

_ST_ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.linear.Identity": "identity",
}
_ACTIVATION_TO_ST = {name: path for path, name in _ST_ACTIVATIONS.items()}
# The sentence-transformers module sequences contrasent computes exactly (Dense before Normalize).
_ST_PIPELINES = (
    ["Transformer", "Pooling"], ["Transformer", "Pooling", "Dense"], ["Transformer", "Pooling", "Normalize"],
    ["Transformer", "Pooling", "Dense", "Normalize"],
)


# ----------------------------------------------------------------------------------------------------
# Finding a folder
# ----------------------------------------------------------------------------------------------------
def resolve_model_dir(name_or_path: str | os.PathLike, **hub_kwargs: Any) -> Path:
    """Return a local folder for ``name_or_path``: the path itself, or a download of a Hub repository.

    Raises:
        TypeError: ``name_or_path`` is not a string or path (``None``, bytes, a number ...).
        ValueError: an empty string.
        FileNotFoundError: a local-looking path that does not exist.
        NotADirectoryError: a path to a file (a model is a folder).
        OSError: a Hub id that cannot be downloaded (offline, unknown, gated), saying how to pass a path.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a model folder or a Hugging Face Hub id (str or os.PathLike), "
                        f"got {type(name_or_path).__name__} {name_or_path!r}")
    name = os.fspath(name_or_path)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name_or_path must name a model folder or a Hugging Face Hub id, got {name!r}")
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"{path} is a file, not a model folder: pass the folder that holds config.json")
    # a Path object is always meant as a local folder, never as a Hub id
    looks_local = not isinstance(name_or_path, str) or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local:
        raise FileNotFoundError(f"model folder {name!r} does not exist (and is not a Hub id)")
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                name,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*/*.json", "*/*.safetensors",
                                f"*Dense/{LEGACY_WEIGHTS_NAME}"],
                **hub_kwargs,
            )
        )
    except Exception as error:  # the Hub client raises many types; all mean "not available"
        raise OSError(
            f"could not load {name!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
            "If you are offline, pass the path of a local model folder instead."
        ) from error


def check_model_dir(path: Path) -> None:
    """Raise a ``ValueError`` if ``path`` holds neither a transformers nor a sentence-transformers model."""
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ValueError(
            f"{path} is not a model folder: expected config.json (transformers) "
            "or modules.json (sentence-transformers) in it"
        )


def read_json(path: Path, expected: type = dict) -> Any:
    """The JSON value in ``path``, which must be an ``expected`` (an object, or a list)."""
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error})") from error
    if not isinstance(value, expected):
        kind = "an object ({...})" if expected is dict else "a list ([...])"
        # a ValueError, as for any other bad content of a file (the CLI reports those in one line)
        raise ValueError(f"{path}: expected {kind} of settings, got {type(value).__name__}")  # noqa: TRY004
    return value


def _setting(values: dict[str, Any], key: str, path: Path) -> Any:
    if key not in values:
        raise ValueError(f"{path}: the setting {key!r} is missing")
    return values[key]


# ----------------------------------------------------------------------------------------------------
# Reading the three layouts
# ----------------------------------------------------------------------------------------------------
def read_encoder_config(path: Path) -> tuple[EncoderConfig, Path, Path | None]:
    """Read the encoder settings of a model folder, whatever its layout.

    Every setting is one contrasent can honour, or a ``ValueError`` names the file and the setting: a
    sentence-transformers pipeline in another order, prompts that are not strings, a default prompt
    name that names none of them, a value of the wrong type. (sentence-transformers' ``do_lower_case`` needs the tokenizer:
    :func:`contrasent.models.loading.check_lower_casing`.)

    Returns:
        ``(config, backbone_dir, head_weights)``: the settings, the folder of the transformers
        checkpoint, and the head's weights file (``None`` when the model has no head), which must exist
        when the settings say the model has a head (:func:`contrasent.models.loading.load_head` checks).
    """
    check_model_dir(path)
    own = path / CONTRASENT_CONFIG_NAME
    if own.is_file():
        values = read_json(own)
        values.pop("sentence_transformers", None)  # informational, written for people and tools
        values.pop("contrasent_version", None)
        config = EncoderConfig.from_dict(values, source=str(own))
        head = path / HEAD_DIR / HEAD_WEIGHTS_NAME if config.head else None
        return config, path, head
    if (path / "modules.json").is_file():
        return _read_sentence_transformers(path)
    return EncoderConfig(pooling="mean"), path, None


def _module_kind(module: Any, path: Path) -> str:
    if not isinstance(module, dict) or not isinstance(module.get("type"), str) or "path" not in module:
        raise ValueError(f"{path}: each module must be an object with 'type' and 'path', got {module!r}")
    return module["type"].rsplit(".", 1)[-1]


def _read_sentence_transformers(path: Path) -> tuple[EncoderConfig, Path, Path | None]:
    modules_path = path / "modules.json"
    modules = read_json(modules_path, list)
    kinds = [_module_kind(module, modules_path) for module in modules]
    if kinds not in _ST_PIPELINES:
        raise ValueError(
            f"{modules_path}: modules {kinds} are not supported; contrasent reads "
            "Transformer, Pooling, then optionally one Dense and a Normalize, in this order"
        )
    backbone_dir = path / modules[0]["path"]
    values: dict[str, Any] = {**_read_st_pooling(path / modules[1]["path"] / "config.json"),
                              "normalize": "Normalize" in kinds}
    head_weights = None
    if "Dense" in kinds:
        dense_dir = path / modules[kinds.index("Dense")]["path"]
        values.update(_read_st_dense(dense_dir / "config.json"))
        legacy = dense_dir / LEGACY_WEIGHTS_NAME  # sentence-transformers < 3 saved a pickle
        head_weights = legacy if legacy.is_file() and not (dense_dir / HEAD_WEIGHTS_NAME).is_file() else (
            dense_dir / HEAD_WEIGHTS_NAME)
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        if (backbone_dir / name).is_file():
            values["max_seq_length"] = read_json(backbone_dir / name).get("max_seq_length")
            source = backbone_dir / name
            break
    else:
        source = modules_path
    settings_path = path / "config_sentence_transformers.json"
    if settings_path.is_file():
        # checked where they are read, so that an error names this file
        EncoderConfig.from_dict(prompt_settings := _read_st_prompt_settings(settings_path), source=str(settings_path))
        values.update(prompt_settings)
    return EncoderConfig.from_dict(values, source=str(source)), backbone_dir, head_weights


def _read_st_dense(config_path: Path) -> dict[str, Any]:
    dense = read_json(config_path)
    activation = _ST_ACTIVATIONS.get(dense.get("activation_function", ""))
    if activation is None or not dense.get("bias", True):
        raise ValueError(
            f"{config_path}: a Dense module with activation "
            f"{dense.get('activation_function')!r} and bias={dense.get('bias')} is not supported; "
            f"contrasent reads Tanh or Identity with a bias"
        )
    return {"head": True, "head_dim": _setting(dense, "out_features", config_path), "head_activation": activation}


def _read_st_prompt_settings(config_path: Path) -> dict[str, Any]:
    """``prompts``, ``default_prompt_name`` and ``truncate_dim`` of ``config_sentence_transformers.json``."""
    settings = read_json(config_path)
    # sentence-transformers >= 5 saves its empty "query" and "document" placeholders: "" prepends nothing
    values = {"prompts": settings.get("prompts") or {}, "default_prompt_name": settings.get("default_prompt_name")}
    if settings.get("truncate_dim") is not None:
        values["truncate_dim"] = settings["truncate_dim"]
    return values


def _read_st_pooling(config_path: Path) -> dict[str, Any]:
    """``pooling`` and ``include_prompt`` of a Pooling module's config."""
    config = read_json(config_path)
    # sentence-transformers >= 6 writes one "pooling_mode" string; earlier versions one flag per mode.
    mode = config.get("pooling_mode")
    if mode is None:
        on = [flag for flag, value in config.items() if flag.startswith("pooling_mode_") and value]
        mode = on[0] if len(on) == 1 else on
    by_flag = {flag: ours for ours, flag in SENTENCE_TRANSFORMERS_POOLING_FLAGS.items()}
    by_name = {"cls": "cls", "mean": "mean", "max": "max", "lasttoken": "last_token"}
    pooling = (by_flag.get(mode) or by_name.get(mode)) if isinstance(mode, str) else None
    if pooling is None:
        raise ValueError(
            f"{config_path}: pooling {mode!r} is not supported; contrasent reads one of "
            f"{sorted(by_name)} (sentence-transformers names)"
        )
    include_prompt = config.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        # a ValueError, as for any other bad content of a file (the CLI reports those in one line)
        raise ValueError(f"{config_path}: include_prompt must be true or false, got {include_prompt!r}")  # noqa: TRY004
    return {"pooling": pooling, "include_prompt": include_prompt}


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------
def sentence_transformers_incompatibility(config: EncoderConfig) -> str | None:
    """Why sentence-transformers cannot reproduce this encoder, or ``None`` when it can."""
    if config.pooling not in SENTENCE_TRANSFORMERS_POOLING_FLAGS:
        return f"pooling {config.pooling!r} has no sentence-transformers equivalent"
    return None


def write_contrasent_config(folder: Path, config: EncoderConfig, version: str) -> None:
    reason = sentence_transformers_incompatibility(config)
    values = {
        **config.to_dict(),
        "sentence_transformers": {"compatible": reason is None, "reason": reason},
        "contrasent_version": version,
    }
    _write_json(folder / CONTRASENT_CONFIG_NAME, values)


def write_sentence_transformers_files(folder: Path, config: EncoderConfig, hidden_size: int) -> None:
    """Write ``modules.json`` and module configs in the format sentence-transformers >= 3 reads.

    ``config_sentence_transformers.json`` holds the prompts, the default prompt name and ``truncate_dim``
    (sentence-transformers 6 reads all three from it), the Pooling config ``include_prompt``.

    The head's weights (``2_Dense/model.safetensors``) are written by the caller whenever the encoder
    has a head; the Dense module is listed in ``modules.json`` only when the head is used at inference.
    Nothing is written when the pooling has no sentence-transformers equivalent (see
    :func:`sentence_transformers_incompatibility`): sentence-transformers then treats the folder as a
    plain transformers checkpoint.
    """
    if sentence_transformers_incompatibility(config) is not None:
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    flags = {flag: flag == SENTENCE_TRANSFORMERS_POOLING_FLAGS[config.pooling]
             for flag in SENTENCE_TRANSFORMERS_POOLING_FLAGS.values()}
    _write_json(folder / "1_Pooling" / "config.json",
                {"word_embedding_dimension": hidden_size, **flags, "pooling_mode_mean_sqrt_len_tokens": False,
                 "include_prompt": config.include_prompt})
    if config.head_used_at_inference:
        modules.append({"idx": 2, "name": "2", "path": HEAD_DIR, "type": "sentence_transformers.models.Dense"})
    if config.normalize:
        modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "sentence_bert_config.json",
                {"max_seq_length": config.max_seq_length, "do_lower_case": False})
    settings = {"model_type": "SentenceTransformer", "prompts": config.prompts,
                "default_prompt_name": config.default_prompt_name, "similarity_fn_name": "cosine"}
    if config.truncate_dim is not None:
        settings["truncate_dim"] = config.truncate_dim
    _write_json(folder / "config_sentence_transformers.json", settings)


def write_head_config(folder: Path, in_features: int, config: EncoderConfig) -> None:
    """The Dense module's config, as sentence-transformers writes it (weights saved by the caller)."""
    _write_json(folder / HEAD_DIR / "config.json", {
        "in_features": in_features,
        "out_features": config.head_dim or in_features,
        "bias": True,
        "activation_function": _ACTIVATION_TO_ST[config.head_activation],
    })


def _write_json(path: Path, values: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(values, file, indent=2)
        file.write("\n")
