"""`recipes/simcse.py` refuses, before any work, what would lose the user's files or the trained model, and
reports a user's error in one line (issue #15, classes 2 and 6)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "simcse.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("simcse_recipe_safety", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text("anchor,positive\n" + "".join(f"question {i},answer {i}\n" for i in range(16)), encoding="utf-8")
    return path


def arguments(tiny_bert_dir, train_file, output_dir, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(tiny_bert_dir), "--train_file", str(train_file), "--output_dir",
            str(output_dir), "--max_steps", "1", "--per_device_train_batch_size", "8", "--eval_strategy", "no",
            "--save_strategy", "no", "--load_best_model_at_end", "false", "--max_seq_length", "16",
            "--report_to", "none", *extra]


def test_a_finished_run_is_not_overwritten_without_asking(recipe, tiny_bert_dir, pairs_file, tmp_path) -> None:
    output_dir = tmp_path / "run"
    recipe.main(arguments(tiny_bert_dir, pairs_file, output_dir))
    results = (output_dir / "results.json").read_text()
    with pytest.raises(recipe.RecipeError, match=r"holds a finished run \(results.json\).*--overwrite_output_dir"):
        recipe.main(arguments(tiny_bert_dir, pairs_file, output_dir))
    assert (output_dir / "results.json").read_text() == results  # untouched
    recipe.main(arguments(tiny_bert_dir, pairs_file, output_dir, "--overwrite_output_dir", "true"))


def test_earlier_checkpoints_need_resume_or_overwrite(recipe, tiny_bert_dir, pairs_file, tmp_path) -> None:
    (tmp_path / "run-checkpoints" / "checkpoint-7").mkdir(parents=True)
    with pytest.raises(recipe.RecipeError, match="checkpoints of an earlier run"):
        recipe.main(arguments(tiny_bert_dir, pairs_file, tmp_path / "run"))
    assert (tmp_path / "run-checkpoints" / "checkpoint-7").is_dir()


def test_a_file_is_never_replaced_by_the_model_folder(recipe, tiny_bert_dir, pairs_file, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(recipe.RecipeError, match="notes.txt is a file, not a folder"):
        recipe.main(arguments(tiny_bert_dir, pairs_file, tmp_path / "notes.txt"))
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_folder_of_other_things_is_not_written_into(recipe, tiny_bert_dir, pairs_file, tmp_path) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "README.md").write_text("my notes", encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"documents is a folder of other files \(1 entry: README.md\)"):
        recipe.main(arguments(tiny_bert_dir, pairs_file, documents))
    assert [p.name for p in documents.iterdir()] == ["README.md"]


def test_an_unwritable_output_dir_is_found_before_training(recipe, tiny_bert_dir, pairs_file) -> None:
    # /proc refuses new files to everyone, root included (tests run as root on CI)
    with pytest.raises(recipe.RecipeError, match="cannot write to /proc/contrasent-run"):
        recipe.main(arguments(tiny_bert_dir, pairs_file, Path("/proc/contrasent-run")))


@pytest.mark.parametrize(("content", "message"), [
    ("learning_rate: [1, 2\n", r"bad.yaml, line 2: not valid YAML"),
    ("- just\n- a list\n", r"bad.yaml: expected a mapping"),
])
def test_a_broken_config_file_is_named(recipe, tmp_path, content, message) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(recipe.RecipeError, match=message):
        recipe.parse_arguments([str(config)])


def test_a_user_error_ends_in_one_line_without_traceback(tiny_bert_dir, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    command = [sys.executable, str(RECIPE), *arguments(tiny_bert_dir, tmp_path / "missing.csv", tmp_path / "run")]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 1
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("simcse.py: error: ") and "missing.csv" in last, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    debug = subprocess.run([*command, "--debug"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize("flag", ["--test_file", "--validation_file", "--train_file"])
def test_a_missing_input_file_is_found_before_the_model_loads(recipe, tiny_bert_dir, pairs_file, tmp_path,
                                                              monkeypatch, flag) -> None:
    """The STS-B test file was read after training, before the final save: a typo lost the trained model."""
    import contrasent

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input files were checked")

    monkeypatch.setattr(contrasent.SentenceEncoder, "from_pretrained", refuse)
    missing = tmp_path / "missing.csv"
    argv = arguments(tiny_bert_dir, pairs_file, tmp_path / "run")
    if flag not in argv:
        argv += [flag, ""]
    argv[argv.index(flag) + 1] = str(missing)
    with pytest.raises((OSError, ValueError), match="missing.csv"):
        recipe.main(argv)
    assert not any((tmp_path / "run").iterdir())  # checked for writing, nothing written
