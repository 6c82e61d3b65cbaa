"""The recipe's one-line errors name the training file and the line an editor shows (issue #15, class 6)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "simcse.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("simcse_recipe_errors", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("extra", [[], ["--max_train_samples", "12"]], ids=["all-rows", "max_train_samples"])
def test_a_bad_row_is_named_by_file_and_line(recipe, tiny_bert_dir, tmp_path, capsys, extra) -> None:
    lines = ["anchor,positive", *(f"question {i},answer {i}" for i in range(8)), "", '"a question',
             'over two lines",its answer', "question 10,   ", *(f"question {i},answer {i}" for i in range(11, 16))]
    train = tmp_path / "train.csv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status = recipe.cli(["--model_name_or_path", str(tiny_bert_dir), "--train_file", str(train),
                         "--output_dir", str(tmp_path / "run"), "--max_steps", "1", "--report_to", "none",
                         "--per_device_train_batch_size", "4", *extra])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 1
    assert last == f"simcse.py: error: {train}, line 13, column 'positive': empty or whitespace-only text"


def test_nan_during_training_ends_in_one_line(recipe, monkeypatch, capsys) -> None:
    def diverging(_argv):
        raise FloatingPointError("step 7: the loss is NaN or inf (batch of train.csv, lines 2, 5); training stopped")

    monkeypatch.setattr(recipe, "main", diverging)
    assert recipe.cli([]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "simcse.py: error: step 7: the loss is NaN or inf (batch of train.csv, lines 2, 5); training stopped")
