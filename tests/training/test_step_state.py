"""The negative queue and the momentum encoder go into checkpoints and come back exactly (issue #15, class 8;
the end-to-end proof is tests/test_reliability.py::test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from contrasent.losses import get_loss
from contrasent.training.queue import MomentumEncoder, NegativeQueue
from contrasent.training.step import ContrastiveStep
from contrasent.training.step_state import MOMENTUM_FILE, load_step_state, queue_file, save_step_state


def step_with_state(seed: int) -> ContrastiveStep:
    torch.manual_seed(seed)
    queue = NegativeQueue(6)
    queue.enqueue(torch.randn(4, 3), torch.arange(4) + seed)
    momentum = MomentumEncoder(nn.Linear(3, 3), momentum=0.9)
    return ContrastiveStep(get_loss("infonce"), queue=queue, momentum_encoder=momentum)


def test_queue_and_momentum_encoder_round_trip(tmp_path) -> None:
    saved, restored = step_with_state(0), step_with_state(1)
    save_step_state(saved, tmp_path)
    assert {path.name for path in tmp_path.iterdir()} == {queue_file(0, 1), MOMENTUM_FILE}
    load_step_state(restored, tmp_path)
    assert torch.equal(restored.queue.embeddings, saved.queue.embeddings)
    assert torch.equal(restored.queue.ids, saved.queue.ids)
    for got, want in zip(restored.momentum_encoder.parameters(), saved.momentum_encoder.parameters()):
        assert torch.equal(got, want)


def test_one_queue_file_per_process_and_nothing_without_the_options(tmp_path) -> None:
    save_step_state(step_with_state(0), tmp_path, process_index=1, world_size=2, main_process=False)
    assert [path.name for path in tmp_path.iterdir()] == ["negative_queue_1.safetensors"]
    save_step_state(ContrastiveStep(get_loss("infonce")), tmp_path / "plain")
    assert not (tmp_path / "plain").exists()


def test_a_checkpoint_without_the_state_warns_naming_the_file(tmp_path, caplog) -> None:
    step = step_with_state(0)
    with caplog.at_level(logging.WARNING):
        load_step_state(step, tmp_path)
    assert f"{tmp_path / 'negative_queue.safetensors'} is missing" in caplog.text
    assert f"{tmp_path / MOMENTUM_FILE} is missing" in caplog.text


def test_a_state_of_another_encoder_is_refused_naming_the_file(tmp_path) -> None:
    save_step_state(step_with_state(0), tmp_path)
    other = ContrastiveStep(get_loss("infonce"), momentum_encoder=MomentumEncoder(nn.Linear(3, 5), momentum=0.9))
    with pytest.raises(ValueError, match=rf"{MOMENTUM_FILE}: cannot restore it into this run"):
        load_step_state(other, tmp_path)
