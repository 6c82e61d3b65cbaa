"""`ContrastiveTrainer` in 2 gloo processes gathers embeddings across devices: one training step (SGD, lr 1)
moves the weights exactly as one process does on the concatenated batch, float64, dropout off, for InfoNCE
with hard negatives and SupCon, without and with gradient caching (issue #6, "must show" (a) and (c))."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import datasets
import pytest
import torch
import torch.multiprocessing as mp
from step_data import small_dataset

from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder

SRC = Path(__file__).resolve().parents[2] / "src"
WORLD, LOCAL_ROWS = 2, 4
# (data layout, mini_batch_size): gathering alone, then gathering with gradient caching.
SCENARIOS = [("triplets", None), ("labels", None), ("triplets", 3), ("labels", 5)]


def dataset(kind: str) -> datasets.Dataset:
    return small_dataset(kind, WORLD * LOCAL_ROWS)


def one_step(model_dir: str, output_dir: str, kind: str, batch_size: int, mini_batch_size: int | None):
    """Weights after one SGD step (lr 1, no clipping, no decay) and the step's loss."""
    model = SentenceEncoder.from_pretrained(
        model_dir, dtype=torch.float64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    args = ContrastiveTrainingArguments(
        output_dir=output_dir, use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
        max_steps=1, per_device_train_batch_size=batch_size, optim="sgd", learning_rate=1.0,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, temperature=0.1, max_seq_length=16,
        mini_batch_size=mini_batch_size, dataloader_num_workers=0, seed=3,
    )
    trainer = ContrastiveTrainer(model=model, args=args, train_dataset=dataset(kind))
    assert trainer.gathers == (args.world_size > 1)
    loss = trainer.train().training_loss
    weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
    return loss, weights


def worker(rank: int, port: int, model_dir: str, out_dir: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD), "LOCAL_WORLD_SIZE": str(WORLD)})
    torch.set_num_threads(1)
    results = {}
    for kind, mini_batch_size in SCENARIOS:
        results[(kind, mini_batch_size)] = one_step(model_dir, out_dir, kind, LOCAL_ROWS, mini_batch_size)
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory, tiny_bert_dir) -> list[dict]:
    tmp = tmp_path_factory.mktemp("trainer-gloo")
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), saved["PYTHONPATH"]]))
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        mp.spawn(worker, args=(free_port(), str(tiny_bert_dir), str(tmp)), nprocs=WORLD, join=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize(("kind", "mini_batch_size"), SCENARIOS)
def test_two_process_step_matches_one_process_on_the_concatenated_batch(
    two_process_results, tiny_bert_dir, tmp_path, kind, mini_batch_size
):
    before = SentenceEncoder.from_pretrained(tiny_bert_dir, dtype=torch.float64).state_dict()
    ref_loss, ref_weights = one_step(str(tiny_bert_dir), str(tmp_path), kind, WORLD * LOCAL_ROWS, None)
    moved = [name for name in ref_weights if not torch.equal(ref_weights[name], before[name])]
    assert len(moved) > 10  # the step changed the backbone, so equal weights mean equal gradients
    for rank, results in enumerate(two_process_results):
        loss, weights = results[(kind, mini_batch_size)]
        assert loss == pytest.approx(ref_loss, abs=1e-5)  # Trainer accumulates the logged loss in float32
        for name, value in ref_weights.items():
            torch.testing.assert_close(weights[name], value, rtol=0, atol=1e-6, msg=f"rank {rank}: {name}")
