"""`SentenceEncoder`: a transformers backbone, pooling, an optional projection head, optional L2 norm."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from contrasent.hardware import warn_if_bfloat16_is_emulated
from contrasent.models import folders, loading, padding_free
from contrasent.models.atomic_folder import atomic_folder
from contrasent.models.backbone_limits import check_length, check_settings, check_vocabulary, position_limit
from contrasent.models.card import (
    CARD_NAME,
    CardData,
    ModelFacts,
    load_card_data,
    render_model_card,
    save_card_data,
)
from contrasent.models.config import EncoderConfig
from contrasent.models.encode_arguments import as_text_list, autocast_dtype, check_options
from contrasent.models.pooling import needs_all_hidden_states, pool
from contrasent.models.prompts import prompt_token_count, resolve_prompt
from contrasent.models.tokenization import length_sorted_chunks, pad, pad_token_id, tokenize

# Keyword arguments of ``from_pretrained`` that set the encoder; the rest go to the backbone/tokenizer.
_ENCODER_SETTINGS = frozenset(EncoderConfig.__dataclass_fields__)
_HUB_SETTINGS = frozenset({"revision", "token", "cache_dir", "local_files_only"})
_PROGRESS_BAR_MIN_TEXTS = 1024

logger = logging.getLogger(__name__)


class ProjectionHead(nn.Module):
    """``activation(W x + b)``: SimCSE's MLP over the pooled vector. (B, H) -> (B, head_dim).

    The parameter names (``linear.weight``, ``linear.bias``) are those of sentence-transformers' Dense
    module, so one weight file serves both libraries.
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "tanh") -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = nn.Tanh() if activation == "tanh" else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(features))


class SentenceEncoder(nn.Module):
    """Texts -> fixed-size embeddings: ``normalize(head(pool(backbone(tokens))))``.

    Args:
        backbone: any ``transformers.AutoModel`` (a model without a task head).
        tokenizer: its tokenizer (a fast tokenizer is strongly recommended: ``encode`` tokenizes in bulk).
        config: pooling, head and normalization settings (:class:`~contrasent.EncoderConfig`).
        card_data: what the model card says about training and evaluation
            (:class:`~contrasent.models.card.CardData`; the trainer fills it); saved and reloaded with the model.

    The head is applied in training mode always, and in eval mode only if ``config.head_at_inference``.
    Settings the backbone cannot honour are refused (``ValueError``): a ``max_seq_length`` beyond its
    position embeddings (:func:`~contrasent.models.backbone_limits.position_limit`), a two-layer pooling on a one-layer backbone.

    Example:
        >>> encoder = SentenceEncoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
        >>> embeddings = encoder.encode(["A man is playing a guitar.", "Someone plays music."])
        >>> embeddings.shape
        (2, 384)
    """

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer: Any,
        config: EncoderConfig | None = None,
        card_data: CardData | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a transformers model (a torch.nn.Module), got {type(backbone).__name__}; "
                            "to load a model by name or path, use SentenceEncoder.from_pretrained(...)")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.config = config or EncoderConfig()
        check_vocabulary(backbone, tokenizer)
        check_settings(backbone, self.config)
        self.card_data = card_data or CardData()
        hidden = self.hidden_size
        self.head = (
            ProjectionHead(hidden, self.config.head_dim or hidden, self.config.head_activation)
            if self.config.head
            else None
        )
        if self.config.truncate_dim is not None:
            check_truncate_dim(self.config.truncate_dim, self.full_dim)

    # ------------------------------------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(self.backbone.config.hidden_size)

    @property
    def full_dim(self) -> int:
        """Size of the embeddings the model computes in eval mode, before any ``truncate_dim``."""
        if self.config.head_used_at_inference:
            return self.config.head_dim or self.hidden_size
        return self.hidden_size

    @property
    def embedding_dim(self) -> int:
        """Size of the embeddings ``encode`` returns (eval mode): ``config.truncate_dim`` when set, as
        sentence-transformers' ``get_sentence_embedding_dimension`` says."""
        return self.config.truncate_dim or self.full_dim

    @property
    def prompts(self) -> dict[str, str]:
        """The named prompts (``config.prompts``), as ``SentenceTransformer.prompts`` lists them."""
        return self.config.prompts

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def max_seq_length(self) -> int:
        """Texts are truncated to this many tokens (special tokens included)."""
        if self.config.max_seq_length is not None:
            return self.config.max_seq_length
        limits = [position_limit(self.backbone), getattr(self.tokenizer, "model_max_length", None)]
        usable = [int(limit) for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000]
        return min(usable) if usable else 512

    # ------------------------------------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        sequence_lengths: torch.Tensor | None = None,
        prompt_lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens -> embeddings, with gradients.

        Padded: ``input_ids``/``attention_mask`` (B, T) -> (B, dim).
        Padding-free (:mod:`contrasent.models.padding_free`): ``input_ids`` (1, Σ L_i) holding B texts back to
        back and ``sequence_lengths`` (B,) -> (B, dim); only for encoders that pass
        :func:`~contrasent.models.padding_free.supports_padding_free`.
        ``prompt_lengths`` (B,): the first ``prompt_lengths[i]`` tokens of text ``i`` (right-padded or
        packed) are left out of the pooling, as sentence-transformers' ``include_prompt=False`` does; they
        still pass through the backbone. ``None``: every token is pooled.
        """
        all_layers = needs_all_hidden_states(self.config.pooling)
        if sequence_lengths is not None:
            last_hidden_state, attention_mask, hidden_states = padding_free.backbone_forward(
                self.backbone, input_ids, sequence_lengths, all_layers)
        elif attention_mask is None:
            raise ValueError("SentenceEncoder.forward needs attention_mask (padded input) or sequence_lengths "
                             "(padding-free input)")
        else:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            output = self.backbone(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=all_layers,
                return_dict=True, **extra,
            )
            last_hidden_state, hidden_states = output.last_hidden_state, output.hidden_states
        if prompt_lengths is not None:
            positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            attention_mask = attention_mask * (positions.unsqueeze(0) >= prompt_lengths.to(positions.device).unsqueeze(1))
        embeddings = pool(
            self.config.pooling, last_hidden_state, attention_mask, hidden_states if all_layers else None
        )
        if self.head is not None and (self.training or self.config.head_at_inference):
            embeddings = self.head(embeddings)
        if self.config.normalize:
            embeddings = nn.functional.normalize(embeddings, p=2, dim=-1)
        return embeddings

    # ------------------------------------------------------------------------------------------------
    # Encoding
    # ------------------------------------------------------------------------------------------------
    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        max_length: int | None = None,
        normalize: bool | None = None,
        dtype: torch.dtype | str | None = None,
        convert_to: str = "numpy",
        show_progress_bar: bool | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        truncate_dim: int | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Encode texts into embeddings, in input order.

        Texts are tokenized in one call, sorted by token count (longest first) and batched, each batch
        padded only to its longest member; the model runs in eval mode under ``torch.inference_mode``.
        A text is read up to ``max_length × 100`` characters, so a huge text costs no more than that
        (the rule: :func:`contrasent.models.tokenization.character_budget`).

        Args:
            texts: one string (a list of one), or any ordered iterable of strings: a list, a tuple, a
                generator (read once) ... (:mod:`contrasent.models.encode_arguments`).
            batch_size: texts per forward pass.
            max_length: truncate to this many tokens (default: :attr:`max_seq_length`; at most
                :func:`~contrasent.models.backbone_limits.position_limit`).
            normalize: L2-normalize the output; ``None`` follows the model's configuration.
            dtype: compute precision: ``None`` (the weights' own), ``torch.bfloat16``/``"bfloat16"`` (CPU
                or GPU autocast: matrix products in bf16, norms and softmax in fp32; faster only on CPUs
                with native bf16 units, see :mod:`contrasent.hardware`, which warns otherwise) or
                ``torch.float16``/``"float16"`` (GPU).
            convert_to: ``"numpy"`` (float32 ``np.ndarray``) or ``"torch"`` (float32 tensor on the model's
                device).
            show_progress_bar: ``None`` shows a bar for 1024 texts or more (when stderr is a terminal).
            prompt_name: prepend the model's prompt of this name (a key of :attr:`prompts`) to every text.
            prompt: prepend this string to every text. Neither: the model's ``default_prompt_name``, if
                set. With ``config.include_prompt=False`` the prompt's tokens are not pooled
                (:func:`~contrasent.models.prompts.prompt_token_count` says how many).
            truncate_dim: keep the first ``truncate_dim`` dimensions (default: ``config.truncate_dim``,
                else all), then L2-normalize if the output is normalized (``normalize``, or the model's
                setting). sentence-transformers re-normalizes a truncated embedding only when
                ``normalize_embeddings=True``: its cosine similarities are the same, its norms not 1.

        Returns:
            (len(texts), :attr:`embedding_dim` or ``truncate_dim``) float32 embeddings.

        Raises:
            TypeError: ``texts`` is None, bytes, a set or dict, or holds an item that is not a string (its
                index is named); an option of another type (:mod:`contrasent.models.encode_arguments`).
            ValueError: ``batch_size`` or ``max_length`` out of range, ``truncate_dim`` not in
                ``1..full_dim``, both ``prompt`` and ``prompt_name``, an unknown ``prompt_name``, or
                another bad argument (named).
        """
        texts = as_text_list(texts)
        check_options(batch_size, max_length, normalize, convert_to)
        if max_length is not None:
            check_length(self.backbone, max_length, "max_length")
        dim = self.embedding_dim if truncate_dim is None else check_truncate_dim(truncate_dim, self.full_dim)
        chosen = resolve_prompt(self.config.prompts, self.config.default_prompt_name, prompt, prompt_name)
        prompt_length = None
        if chosen:
            texts = [chosen + text for text in texts]
            if not self.config.include_prompt:
                prompt_length = prompt_token_count(self.tokenizer, chosen)
        compute_dtype = autocast_dtype(dtype)
        device = self.device
        if compute_dtype == torch.bfloat16 and device.type == "cpu":
            warn_if_bfloat16_is_emulated("encode(dtype='bfloat16')")
        result = torch.empty((len(texts), dim), dtype=torch.float32, device=device)

        if texts:
            token_ids = tokenize(self.tokenizer, texts, max_length or self.max_seq_length)
            # Longest first, as sentence-transformers orders them: memory peaks with the first batch.
            batches = length_sorted_chunks([len(ids) for ids in token_ids], batch_size, longest_first=True)
            pad_id = pad_token_id(self.tokenizer)
            progress = _progress_bar(len(texts), show_progress_bar)
            was_training = self.training
            self.eval()
            try:
                with torch.inference_mode(), torch.autocast(
                    device.type, dtype=compute_dtype or torch.float32, enabled=compute_dtype is not None
                ):
                    for batch in batches:
                        inputs = pad([token_ids[i] for i in batch], pad_id)
                        input_ids, attention_mask = inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
                        prompt_lengths = None if prompt_length is None else torch.full(
                            (len(batch),), prompt_length, device=device)
                        result[batch] = self(input_ids, attention_mask, prompt_lengths=prompt_lengths)[:, :dim].float()
                        progress.update(len(batch))
            finally:
                self.train(was_training)
                progress.close()

        if normalize or (normalize is None and self.config.normalize):
            result = nn.functional.normalize(result, p=2, dim=-1)
        return result.cpu().numpy() if convert_to == "numpy" else result

    # ------------------------------------------------------------------------------------------------
    # Saving and loading
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> SentenceEncoder:
        """Load an encoder from a local folder or a Hub id, in any of three layouts.

        Reads contrasent's own folders, sentence-transformers folders (``modules.json`` with
        Transformer / Pooling / Dense / Normalize) and plain transformers checkpoints (mean pooling).

        A model loads whole or not at all (:mod:`contrasent.models.loading`): every weight the folder's
        settings say exists is loaded with its shape, else an error names the file, the parameter and
        the expected shape; a setting that cannot be honoured (a prompt, a length beyond the position
        embeddings ...) is refused naming its file. A head asked for with ``head=True`` on a folder
        without one starts at random, to be trained.

        Args:
            name_or_path: a folder, or a Hugging Face Hub id (downloaded; fails with a clear ``OSError``
                when the Hub cannot be reached). ``None`` or another type is a ``TypeError``.
            **kwargs: :class:`EncoderConfig` fields override the folder's settings (``pooling="cls"``,
                ``head=True``, ``max_seq_length=128``, ``prompts={"query": "query: "}`` (added to the
                folder's, replacing those of the same name, as sentence-transformers does),
                ``default_prompt_name``, ``include_prompt``, ``truncate_dim`` ...); ``revision``, ``token``, ``cache_dir``,
                ``local_files_only`` go to the Hub; anything else (``trust_remote_code``,
                ``torch_dtype``, ``attn_implementation`` ...) to ``AutoModel.from_pretrained``.
                Remote code is never run unless ``trust_remote_code=True`` is passed.
        """
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in _ENCODER_SETTINGS}
        hub = {key: kwargs.pop(key) for key in list(kwargs) if key in _HUB_SETTINGS}
        folder = folders.resolve_model_dir(name_or_path, **hub)
        config, backbone_dir, head_weights = folders.read_encoder_config(folder)
        if isinstance(overrides.get("prompts"), dict):  # as sentence-transformers: the given ones win, by name
            overrides["prompts"] = {**config.prompts, **overrides["prompts"]}
        config = config.replace(source="from_pretrained arguments", **overrides)
        trust_remote_code = kwargs.pop("trust_remote_code", False)
        if not any(backbone_dir.glob("*.safetensors")) and any(backbone_dir.glob("*.bin")):
            logger.warning("%s has no safetensors weights: loading the legacy PyTorch pickle with "
                           "torch.load(weights_only=True), which refuses anything but tensors", backbone_dir)
        backbone = loading.load_backbone(backbone_dir, _ENCODER_SETTINGS | _HUB_SETTINGS,
                                         trust_remote_code=trust_remote_code, **kwargs)
        tokenizer = loading.load_tokenizer(backbone_dir, trust_remote_code=trust_remote_code)
        loading.check_lower_casing(backbone_dir, tokenizer)
        try:
            encoder = cls(backbone, tokenizer, config, load_card_data(folder))
        except ValueError as error:
            raise ValueError(f"{folder}: {error}") from None
        if encoder.head is not None and head_weights is not None:
            loading.load_head(encoder.head, head_weights)
        return encoder

    def save_pretrained(
        self, save_directory: str | os.PathLike, *, model_id: str | None = None, exist_ok: bool = False
    ) -> None:
        """Save weights (safetensors), tokenizer, settings and a model card, in a folder every tool reads.

        The folder loads with :meth:`from_pretrained` (bit-identical embeddings), with
        ``transformers.AutoModel.from_pretrained`` (the backbone) and, when the pooling has a
        sentence-transformers equivalent, with ``sentence_transformers.SentenceTransformer`` (the same
        embeddings). ``contrasent_config.json`` records whether sentence-transformers can read it.

        Writing is atomic: everything goes to a temporary sibling folder that then replaces
        ``save_directory``; an error midway leaves a previous model there intact. Only what is ours to
        replace is replaced (:mod:`contrasent.models.atomic_folder`): ``save_directory`` must not exist,
        be empty, or hold a model saved by contrasent (``contrasent_config.json``); a file or a folder
        of other things raises ``FileExistsError`` before anything is written. ``exist_ok=True`` writes
        into any folder (files of the same names are replaced, the others kept): a trainer's
        ``output_dir``.

        The folder's ``README.md`` is a model card (see :mod:`contrasent.models.card`): Hub metadata,
        settings, :attr:`card_data` (training, evaluation) and usage code; ``model_id`` is the name its
        usage code loads (default: ``save_directory`` as given). :meth:`push_to_hub` passes the repo id.
        """
        from safetensors.torch import save_file

        from contrasent import __version__

        config = self.config.replace(max_seq_length=self.max_seq_length)
        with atomic_folder(save_directory, folders.MODEL_FOLDER, exist_ok=exist_ok) as folder:
            self.backbone.save_pretrained(folder, safe_serialization=True)
            self.tokenizer.save_pretrained(folder)
            folders.write_contrasent_config(folder, config, __version__)
            folders.write_sentence_transformers_files(folder, config, self.hidden_size)
            if self.head is not None:
                folders.write_head_config(folder, self.hidden_size, config)
                state = {name: tensor.detach().contiguous().cpu() for name, tensor in self.head.state_dict().items()}
                save_file(state, Path(folder) / folders.HEAD_DIR / folders.HEAD_WEIGHTS_NAME)
            save_card_data(folder, self.card_data)
            facts = ModelFacts(
                model_id=model_id or str(save_directory), config=config, embedding_dim=self.embedding_dim,
                hidden_size=self.hidden_size, backbone_class=type(self.backbone).__name__,
                sentence_transformers_incompatibility=folders.sentence_transformers_incompatibility(config),
            )
            (folder / CARD_NAME).write_text(render_model_card(facts, self.card_data), encoding="utf-8")

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str | None = None,
        save_directory: str | os.PathLike | None = None,
    ) -> str:
        """Save (model card included) and upload to the Hugging Face Hub; return the commit URL.

        Creates ``repo_id`` if needed (``private`` applies then). ``save_directory`` keeps the saved folder
        (default: a temporary one). Raises ``OSError`` naming the endpoint and repository when the Hub
        cannot be reached or refuses; the local save is complete by then. See :func:`contrasent.models.hub.push_to_hub`.
        """
        from contrasent.models.hub import push_to_hub

        return push_to_hub(self, repo_id, private=private, token=token, commit_message=commit_message,
                           save_directory=save_directory)

    def __repr__(self) -> str:
        return (f"SentenceEncoder(backbone={type(self.backbone).__name__}, dim={self.embedding_dim}, "
                f"config={self.config})")


def check_truncate_dim(truncate_dim: Any, dimension: int) -> int:
    """Return ``truncate_dim`` if it is an integer in ``1..dimension``, else raise naming both."""
    if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int):
        raise TypeError(f"truncate_dim must be an integer in 1..{dimension}, got {truncate_dim!r}")
    if not 0 < truncate_dim <= dimension:
        raise ValueError(f"truncate_dim must be in 1..{dimension} (the model's embedding dimension), got {truncate_dim}")
    return truncate_dim


class _NoProgress:
    def update(self, _n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(num_texts: int, show: bool | None) -> Any:
    """A bar counting the encoded texts and their rate (texts/s, the figure users compare)."""
    if show is False or (show is None and num_texts < _PROGRESS_BAR_MIN_TEXTS):
        return _NoProgress()
    from tqdm.auto import tqdm

    # disable=None hides the bar when stderr is not a terminal (logs of batch jobs stay clean).
    return tqdm(total=num_texts, desc="Encoding", unit="text", disable=None if show is None else False)

