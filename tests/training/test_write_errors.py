"""A full disk while a checkpoint is written says "no space left on device" and which folder (issue #15,
class 6), from the trainer and, as its one last line, from the recipe."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from safetensors import SafetensorError

from contrasent.training import write_errors
from contrasent.training.write_errors import WriteError, named_write_errors

REPO_ROOT = Path(__file__).resolve().parents[2]
Usage = namedtuple("Usage", "total used free")

# what torch, safetensors and Python raise when the disk fills up (messages copied from real runs)
FULL_DISK_ERRORS = [
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 8768 vs 8660"),
    RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"),
    SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
    OSError(errno.ENOSPC, "No space left on device", "optimizer.pt"),
]


@pytest.mark.parametrize("error", FULL_DISK_ERRORS, ids=lambda error: type(error).__name__ + str(error)[:20])
def test_a_full_disk_is_named_with_the_folder(tmp_path, monkeypatch, error) -> None:
    monkeypatch.setattr(write_errors.shutil, "disk_usage", lambda _path: Usage(10**9, 10**9 - 4096, 4096))
    folder = tmp_path / "checkpoint-6"
    with pytest.raises(WriteError) as caught, named_write_errors(folder):
        raise error
    assert str(caught.value).startswith(f"no space left on device while writing {folder}; 0.0 MiB left there")
    assert caught.value.errno == errno.ENOSPC and caught.value.__cause__ is error


def test_another_failed_write_is_named_with_the_folder_and_the_error(tmp_path) -> None:
    with pytest.raises(WriteError, match=rf"^writing {tmp_path} failed: PermissionError: \[Errno 13\] denied"), \
            named_write_errors(tmp_path):
        raise PermissionError(errno.EACCES, "denied")
    with pytest.raises(RuntimeError, match="^not a write$"), named_write_errors(tmp_path):
        raise RuntimeError("not a write")


def small_disk_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not small_disk_available(), reason="needs `unshare -rm` and tmpfs mounts to fill a disk")
@pytest.mark.parametrize("size", ["1m", "6m"], ids=["full-while-saving-weights", "full-while-saving-optimizer"])
def test_the_recipe_says_no_space_left_and_where(tiny_bert_dir, tmp_path, size) -> None:
    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\n" + "".join(f"question {i},answer {i}\n" for i in range(16)), encoding="utf-8")
    disk = tmp_path / "disk"
    disk.mkdir()
    recipe = [sys.executable, str(REPO_ROOT / "recipes" / "simcse.py"), "--model_name_or_path", str(tiny_bert_dir),
              "--train_file", str(data), "--output_dir", str(disk / "run"), "--max_steps", "2", "--save_steps", "1",
              "--eval_strategy", "no", "--load_best_model_at_end", "false", "--per_device_train_batch_size", "8",
              "--report_to", "none"]
    command = f"mount -t tmpfs -o size={size} tmpfs {disk} && exec " + " ".join(map(_quoted, recipe))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(["unshare", "-rm", "sh", "-c", command], env=env, capture_output=True, text=True,
                               timeout=600, check=False)
    last = completed.stderr.strip().splitlines()[-1]
    assert completed.returncode == 1, completed.stderr[-3000:]
    assert last.startswith(f"simcse.py: error: no space left on device while writing {disk}/run-checkpoints/"
                           "checkpoint-1"), completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr


def _quoted(argument: str) -> str:
    return "'" + argument.replace("'", "'\\''") + "'"
