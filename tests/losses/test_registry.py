"""``get_loss`` names, ``input_format`` and the cheap ``import contrasent``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contrasent.losses import LOSSES, InfoNCE, get_loss

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMATS = {"anchor_positive", "views", "pair_label", "labels", "scored_pairs"}


def test_every_loss_is_registered_with_a_known_input_format():
    assert set(LOSSES) == {
        "infonce", "ntxent", "neg", "nce", "margin_contrastive", "triplet", "npair",
        "soft_nearest_neighbors", "lifted_structure", "supcon", "cosent",
    }  # fmt: skip
    for cls in LOSSES.values():
        assert cls.input_format in FORMATS
        assert "Reference" in cls.__doc__ and "Call" in cls.__doc__


def test_get_loss_builds_with_kwargs():
    loss = get_loss("infonce", temperature=0.1, symmetric=True)
    assert isinstance(loss, InfoNCE) and loss.temperature == 0.1 and loss.symmetric


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown loss 'simcse'; valid names: infonce, ntxent, neg"):
        get_loss("simcse")


def test_import_contrasent_does_not_import_torch():
    code = "import sys, contrasent; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": "src"}, cwd=REPO_ROOT)
