"""Saving evaluation results: a failure (a full disk) names the file and leaves no temporary file."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from contrasent.evaluation import save_results


def test_a_full_disk_names_the_results_file_and_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    output = tmp_path / "results.json"
    save_results({"STS-B": {"spearman": 80.0}}, output)
    real_write = Path.write_text

    def full_disk(self, *args, **kwargs):
        real_write(self, "{", encoding="utf-8")  # a part of it made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match=rf"cannot write the results to {output}: No space left on device"):
        save_results({"STS-B": {"spearman": 81.0}, "SICK-R": {"spearman": 70.0}}, output)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left
    assert json.loads(output.read_text()) == {"STS-B": {"spearman": 80.0}}  # the last complete results
