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
    "read_encoder_config", "resolve_model_dir", "sentence_transformers_incompatibility",
    "write_contrasent_config", "write_head_config", "write_sentence_transformers_files",
]

CONTRASENT_CONFIG_NAME = "contrasent_config.json"
HEAD_DIR = "2_Dense"
HEAD_WEIGHTS_NAME = "model.safetensors"

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


# ----------------------------------------------------------------------------------------------------
# Finding a folder
# ----------------------------------------------------------------------------------------------------
def resolve_model_dir(name_or_path: str | os.PathLike, **hub_kwargs: Any) -> Path:
    """Return a local folder for ``name_or_path``: the path itself, or a download of a Hub repository.

    Raises:
        FileNotFoundError: a local-looking path that does not exist.
        OSError: a Hub id that cannot be downloaded (offline, unknown, gated), saying how to pass a path.
    """
    path = Path(os.path.expanduser(str(name_or_path)))
    if path.is_dir():
        return path
    name = str(name_or_path)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or path.exists()
    if looks_local:
        raise FileNotFoundError(f"model folder {name!r} does not exist (and is not a Hub id)")
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                name,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*/*.json", "*/*.safetensors"],
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


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error


# ----------------------------------------------------------------------------------------------------
# Reading the three layouts
# ----------------------------------------------------------------------------------------------------
def read_encoder_config(path: Path) -> tuple[EncoderConfig, Path, Path | None]:
    """Read the encoder settings of a model folder, whatever its layout.

    Returns:
        ``(config, backbone_dir, head_weights)``: the settings, the folder of the transformers
        checkpoint, and the head's safetensors file (``None`` when the model has no head).
    """
    check_model_dir(path)
    own = path / CONTRASENT_CONFIG_NAME
    if own.is_file():
        values = _read_json(own)
        values.pop("sentence_transformers", None)  # informational, written for people and tools
        values.pop("contrasent_version", None)
        config = EncoderConfig.from_dict(values, source=str(own))
        head = path / HEAD_DIR / HEAD_WEIGHTS_NAME if config.head else None
        return config, path, head
    if (path / "modules.json").is_file():
        return _read_sentence_transformers(path)
    return EncoderConfig(pooling="mean"), path, None


def _module_kind(module_type: str) -> str:
    return module_type.rsplit(".", 1)[-1]


def _read_sentence_transformers(path: Path) -> tuple[EncoderConfig, Path, Path | None]:
    modules = _read_json(path / "modules.json")
    kinds = [_module_kind(m["type"]) for m in modules]
    supported = ["Transformer", "Pooling", "Dense", "Normalize"]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in supported for k in kinds):
        raise ValueError(
            f"{path / 'modules.json'}: modules {kinds} are not supported; contrasent reads "
            "Transformer, Pooling, then optionally one Dense and a Normalize"
        )
    backbone_dir = path / modules[0]["path"]
    pooling = _read_st_pooling(path / modules[1]["path"] / "config.json")
    values: dict[str, Any] = {"pooling": pooling, "normalize": "Normalize" in kinds}
    head_weights = None
    if "Dense" in kinds:
        dense_dir = path / modules[kinds.index("Dense")]["path"]
        dense = _read_json(dense_dir / "config.json")
        activation = _ST_ACTIVATIONS.get(dense.get("activation_function", ""))
        if activation is None or not dense.get("bias", True):
            raise ValueError(
                f"{dense_dir / 'config.json'}: a Dense module with activation "
                f"{dense.get('activation_function')!r} and bias={dense.get('bias')} is not supported; "
                f"contrasent reads Tanh or Identity with a bias"
            )
        values.update(head=True, head_dim=dense["out_features"], head_activation=activation)
        head_weights = dense_dir / HEAD_WEIGHTS_NAME
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        if (backbone_dir / name).is_file():
            values["max_seq_length"] = _read_json(backbone_dir / name).get("max_seq_length")
            break
    return EncoderConfig(**values), backbone_dir, head_weights


def _read_st_pooling(config_path: Path) -> str:
    config = _read_json(config_path)
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
    return pooling


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
                {"word_embedding_dimension": hidden_size, **flags, "pooling_mode_mean_sqrt_len_tokens": False})
    if config.head_used_at_inference:
        modules.append({"idx": 2, "name": "2", "path": HEAD_DIR, "type": "sentence_transformers.models.Dense"})
    if config.normalize:
        modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "sentence_bert_config.json",
                {"max_seq_length": config.max_seq_length, "do_lower_case": False})
    _write_json(folder / "config_sentence_transformers.json",
                {"model_type": "SentenceTransformer", "prompts": {}, "default_prompt_name": None,
                 "similarity_fn_name": "cosine"})


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
