"""Pushing a saved model to the Hugging Face Hub (create the repository, upload the folder).

Anything with ``save_pretrained(folder, model_id=...)`` (:class:`SavesPretrained`) can be pushed; the
encoder's ``push_to_hub`` calls this module, which therefore never imports the encoder. The model is
first saved completely (``SentenceEncoder.save_pretrained``, model card included), then uploaded with
``huggingface_hub``: ``create_repo(exist_ok=True)`` and ``upload_folder``. A failure to reach or write
to the Hub raises an ``OSError`` that names the repository, the endpoint and the local folder; the
local save is already complete by then.

``HF_ENDPOINT`` (read by ``huggingface_hub`` when it is imported) points the upload at another Hub,
e.g. a private deployment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol


class SavesPretrained(Protocol):
    """What :func:`push_to_hub` needs of a model: it saves itself, completely, into a folder."""

    def save_pretrained(self, save_directory: str | os.PathLike, *, model_id: str | None = None) -> None:
        """Write the model to ``save_directory``; ``model_id`` is the Hub name its model card uses."""


def push_to_hub(
    model: SavesPretrained,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    save_directory: str | os.PathLike | None = None,
) -> str:
    """Save ``model`` and upload the folder to the Hub repository ``repo_id``; return the commit URL.

    Args:
        model: the model to push (a :class:`~contrasent.models.encoder.SentenceEncoder`, or anything
            with ``save_pretrained(folder, model_id=repo_id)``).
        repo_id: ``"user/name"`` or ``"org/name"``; created if it does not exist.
        private: create the repository private (ignored when it already exists).
        token: a Hub token with write access (default: ``HF_TOKEN`` or the saved login).
        commit_message: default ``"Upload sentence encoder with contrasent"``.
        save_directory: save here first and keep the folder; default: a temporary folder, removed
            afterwards.

    Raises:
        OSError: the Hub could not be reached or refused the upload (the message names the endpoint,
            the repository and, when ``save_directory`` is given, the complete local save).
    """
    from huggingface_hub import HfApi

    if not isinstance(repo_id, str) or not repo_id.strip("/"):
        raise ValueError(f"repo_id must be a non-empty string like 'user/model-name', got {repo_id!r}")
    with tempfile.TemporaryDirectory(prefix="contrasent-push-") as scratch:
        folder = Path(save_directory) if save_directory is not None else Path(scratch) / "model"
        model.save_pretrained(folder, model_id=repo_id)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=folder,
                commit_message=commit_message or "Upload sentence encoder with contrasent",
            )
        except Exception as error:  # the Hub client raises many types; all mean "not pushed"
            kept = (f"The model is saved completely in {folder}; push it again when the Hub is reachable."
                    if save_directory is not None else
                    "Pass save_directory=... to keep a local copy when a push fails.")
            raise OSError(
                f"could not push to Hugging Face Hub repository {repo_id!r} at {api.endpoint} "
                f"({type(error).__name__}: {error}). {kept}"
            ) from error
    return str(commit.commit_url) if hasattr(commit, "commit_url") else str(commit)
