"""Reliability: a killed run resumes to the same weights, checkpoints are used only when complete, the same
seed gives the same weights, loading runs no pickle or remote code, and bad input is named precisely."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder
from contrasent.training.checkpoints import is_complete_checkpoint, last_complete_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wiki_file(tmp_path_factory, data_dir) -> Path:
    lines = (data_dir / "wiki1m_prefix" / "wiki1m_for_simcse.first11914.txt").read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("wiki") / "wiki.txt"
    path.write_text("\n".join(lines[:96]) + "\n", encoding="utf-8")
    return path


def recipe_command(tiny_bert_dir, train_file, output_dir, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "recipes" / "simcse.py"),
            "--model_name_or_path", str(tiny_bert_dir), "--train_file", str(train_file),
            "--output_dir", str(output_dir), "--max_steps", "16", "--save_steps", "2", "--save_total_limit", "20",
            "--eval_strategy", "no", "--load_best_model_at_end", "false", "--per_device_train_batch_size", "16",
            "--learning_rate", "5e-4", "--warmup_steps", "0", "--max_seq_length", "24", "--seed", "3", *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return SentenceEncoder.from_pretrained(folder).state_dict()


def logged_losses(checkpoint: Path) -> list[float]:
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


# the negative queue and the momentum encoder are checkpointed too (issue #15, class 8)
@pytest.mark.parametrize("options", [[], ["--queue_size", "40"], ["--momentum", "0.9"],
                                     ["--queue_size", "40", "--momentum", "0.9"]], ids=["plain", "queue", "momentum",
                                                                                         "queue+momentum"])
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tiny_bert_dir, wiki_file, tmp_path,
                                                                       options) -> None:
    options = [*options, "--logging_steps", "1"]
    subprocess.run(recipe_command(tiny_bert_dir, wiki_file, tmp_path / "full", *options), env=environment(),
                   check=True, capture_output=True, timeout=900)

    killed = tmp_path / "killed"
    process = subprocess.Popen(recipe_command(tiny_bert_dir, wiki_file, killed, *options), env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    checkpoints = tmp_path / "killed-checkpoints"  # the recipe keeps checkpoints beside the model folder
    while not is_complete_checkpoint(checkpoints / "checkpoint-6") and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint-6 within 10 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # mid-epoch: 96 rows / 16 = 6 steps per epoch, 16 steps in all
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (checkpoints / "checkpoint-16").exists()

    subprocess.run(recipe_command(tiny_bert_dir, wiki_file, killed, *options, "--resume_from_checkpoint", "last"),
                   env=environment(), check=True, capture_output=True, timeout=900)
    full, resumed = weights(tmp_path / "full"), weights(killed)
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)
    uninterrupted = logged_losses(tmp_path / "full-checkpoints" / "checkpoint-16")
    assert len(uninterrupted) == 16
    assert logged_losses(checkpoints / "checkpoint-16") == pytest.approx(uninterrupted, rel=0, abs=1e-6)


def test_half_written_checkpoints_are_never_resumed_from(tmp_path) -> None:
    for step in (2, 4, 6):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt"):
            (folder / name).write_bytes(b"x")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # killed while writing
    (tmp_path / "checkpoint-4" / "optimizer.pt").unlink()  # killed before the optimizer was saved
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    assert last_complete_checkpoint(tmp_path / "missing") is None


def train_once(tiny_bert_dir, dataset, output_dir, steps: int = 6, **overrides) -> SentenceEncoder:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    args = ContrastiveTrainingArguments(output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=8,
                                        learning_rate=5e-4, report_to="none", save_strategy="no", seed=11,
                                        disable_tqdm=True, **overrides)
    ContrastiveTrainer(model=encoder, args=args, train_dataset=dataset).train()
    return encoder


def test_same_seed_same_data_same_weights(tiny_bert_dir, wiki_file, tmp_path) -> None:
    dataset = datasets.Dataset.from_dict({"text": wiki_file.read_text().splitlines()[:48]})
    first = train_once(tiny_bert_dir, dataset, tmp_path / "a").state_dict()
    second = train_once(tiny_bert_dir, dataset, tmp_path / "b").state_dict()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_nan_embeddings_stop_training_naming_step_and_rows(tiny_bert_dir, wiki_file, tmp_path) -> None:
    texts = wiki_file.read_text().splitlines()[:16]
    texts[5] = "poison " + texts[5]
    dataset = datasets.Dataset.from_dict({"text": texts})
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    poison = encoder.tokenizer.convert_tokens_to_ids("poison")
    forward = encoder.forward

    def corrupt(input_ids, attention_mask, token_type_ids=None):  # as a diverging layer would
        embeddings = forward(input_ids, attention_mask, token_type_ids)
        bad = (input_ids == poison).any(dim=1, keepdim=True)
        return torch.where(bad, torch.full_like(embeddings, float("nan")), embeddings)

    encoder.forward = corrupt
    args = ContrastiveTrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=16,
                                        report_to="none", save_strategy="no", disable_tqdm=True)
    with pytest.raises(FloatingPointError, match=r"step 1: the encoder produced NaN or inf embeddings "
                                                 r"\(train_dataset\[5\]\); training stopped"):
        ContrastiveTrainer(model=encoder, args=args, train_dataset=dataset).train()


def test_legacy_pickle_weights_load_only_as_tensors(tiny_bert_dir, tmp_path, caplog) -> None:
    from transformers import AutoModel

    folder = tmp_path / "legacy"
    shutil.copytree(tiny_bert_dir, folder)
    state = AutoModel.from_pretrained(tiny_bert_dir).state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with caplog.at_level(logging.WARNING):
        encoder = SentenceEncoder.from_pretrained(folder)
    assert "torch.load(weights_only=True)" in caplog.text
    torch.testing.assert_close(encoder.backbone.embeddings.word_embeddings.weight,
                               state["embeddings.word_embeddings.weight"])

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"embeddings.word_embeddings.weight": Exploit()}, folder / "pytorch_model.bin")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|unpickl"):
        SentenceEncoder.from_pretrained(folder)
    assert not (tmp_path / "pwned").exists(), "a pickled payload ran"


def test_remote_code_never_runs_unless_trusted(tiny_bert_dir, tmp_path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(tiny_bert_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('x')\n")
    with contextlib.suppress(Exception):  # refusing to load is fine; running the file is not
        SentenceEncoder.from_pretrained(folder)
    assert not (tmp_path / "ran").exists(), "modeling_evil.py was executed without trust_remote_code"
