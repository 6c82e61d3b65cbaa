"""Load the model a subcommand names, so that any failure ends in one line naming the model.

``SentenceEncoder.from_pretrained`` raises ``OSError`` or ``ValueError`` naming the file for the failures
it knows (a missing folder, a truncated ``model.safetensors``, a head of the wrong shape); those pass
through as they are when they name the model. Anything else a broken folder makes a library raise on the
way (safetensors' own error, a ``RuntimeError`` from torch, a ``KeyError`` from a config that lacks a
field, a ``JSONDecodeError`` that says where in a file but not which file) is given the model's name:
``cannot load the model NAME: <type>: <message>``, which :func:`contrasent.cli.main` prints as one line.
``contrasent evaluate``, ``mine``, ``search`` and ``serve`` all load their model here.
"""

from __future__ import annotations

from typing import Any


def load_encoder(name: str, **overrides: Any) -> Any:
    """``SentenceEncoder.from_pretrained(name, **overrides)``, every failure an ``OSError`` or ``ValueError``
    naming ``name`` (see the module docstring)."""
    from contrasent.models.encoder import SentenceEncoder

    try:
        return SentenceEncoder.from_pretrained(name, **overrides)
    except (OSError, ValueError) as error:
        if str(name) in str(error):
            raise
        kind = ValueError if isinstance(error, ValueError) else OSError
        raise kind(f"cannot load the model {name}: {type(error).__name__}: {error}") from error
    except Exception as error:  # any library's failure on a broken folder: one line naming the model
        raise OSError(f"cannot load the model {name}: {type(error).__name__}: {error}") from error
