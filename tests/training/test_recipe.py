"""End to end: `recipes/simcse.py` on the tiny real BERT, for every data layout; resume; 2 processes."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from contrasent import SentenceEncoder

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_recipe():
    spec = importlib.util.spec_from_file_location("simcse_recipe", REPO_ROOT / "recipes" / "simcse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


@pytest.fixture(scope="module")
def triples(data_dir) -> list[dict[str, str]]:
    with open(data_dir / "snli_senteval" / "nli_triples_snli_dev_test.csv", encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))[:64]


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def layout_files(tmp_path_factory, triples, data_dir) -> dict[str, Path]:
    """One real-data training file per layout, in the file formats the recipe reads."""
    folder = tmp_path_factory.mktemp("layouts")
    files = {}
    files["unsupervised"] = folder / "wiki.txt"
    lines = (data_dir / "wiki1m_prefix" / "wiki1m_for_simcse.first11914.txt").read_text(encoding="utf-8").splitlines()
    files["unsupervised"].write_text("\n".join(lines[:64]) + "\n", encoding="utf-8")
    files["pairs"] = write_csv(folder / "pairs.csv", [{"anchor": r["sent0"], "positive": r["sent1"]} for r in triples])
    files["triplets"] = write_csv(folder / "triplets.tsv", triples, delimiter="\t")
    labelled = [{"text": row[column], "label": i} for i, row in enumerate(triples[:32]) for column in ("sent0", "sent1")]
    (folder / "labels.jsonl").write_text("".join(json.dumps(record) + "\n" for record in labelled), encoding="utf-8")
    files["labels"] = folder / "labels.jsonl"
    pair_labels = [{"s1": r["sent0"], "s2": r["sent1"], "label": 1} for r in triples[:32]]
    pair_labels += [{"s1": r["sent0"], "s2": r["hard_neg"], "label": 0} for r in triples[:32]]
    files["pair_labels"] = write_csv(folder / "pair_labels.csv", pair_labels)
    scored = []
    with open(data_dir / "stsbenchmark" / "sts-train.csv", encoding="utf-8") as file:
        for line in list(file)[:64]:
            fields = line.rstrip("\n").split("\t")
            scored.append({"sentence1": fields[5], "sentence2": fields[6], "score": float(fields[4])})
    import datasets

    datasets.Dataset.from_list(scored).to_parquet(str(folder / "scored.parquet"))
    files["scored_pairs"] = folder / "scored.parquet"
    return files


def run_args(tiny_bert_dir, train_file, output_dir, **extra) -> list[str]:
    values = {
        "model_name_or_path": tiny_bert_dir, "train_file": train_file, "output_dir": output_dir,
        "max_steps": 24, "per_device_train_batch_size": 16, "learning_rate": 5e-4, "warmup_steps": 0,
        "logging_steps": 4, "eval_steps": 12, "save_steps": 12, "max_seq_length": 24, "seed": 7,
        "dataloader_num_workers": 0, "save_total_limit": 4, **extra,
    }
    return [item for key, value in values.items() for item in (f"--{key}", str(value))]


def checkpoint_dir(output_dir: Path) -> Path:
    """Where the recipe puts checkpoints by default: beside the model folder, not inside it."""
    return output_dir.with_name(output_dir.name + "-checkpoints")


def losses(output_dir: Path) -> list[float]:
    checkpoints = sorted(checkpoint_dir(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.parametrize(
    ("layout", "expected_loss"),
    [("unsupervised", "InfoNCE"), ("pairs", "InfoNCE"), ("triplets", "InfoNCE"), ("labels", "SupCon"),
     ("pair_labels", "MarginContrastive"), ("scored_pairs", "CoSENT")],
)
def test_every_layout_trains_saves_and_reloads(recipe, layout_files, tiny_bert_dir, tmp_path, layout, expected_loss,
                                               caplog) -> None:
    output_dir = tmp_path / "out"
    caplog.set_level("INFO")
    results = recipe.main(run_args(tiny_bert_dir, layout_files[layout], output_dir))
    assert f"loss {expected_loss}" in caplog.text
    history = losses(output_dir)
    assert len(history) == 6 and all(np.isfinite(history))
    assert np.mean(history[-2:]) < np.mean(history[:2]), history
    saved = json.loads((output_dir / "results.json").read_text())
    assert saved["global_step"] == 24 and "dev_stsb_spearman" in saved and "test_stsb_spearman" in saved
    assert saved == pytest.approx(results)
    assert (output_dir / "recipe_config.json").is_file()
    assert not list(output_dir.glob("checkpoint-*")) and not (output_dir / "runs").exists()  # the model only
    for folder in (output_dir, Path(results["best_model_checkpoint"])):
        reloaded = SentenceEncoder.from_pretrained(folder)
        assert np.isfinite(reloaded.encode(["a short test sentence"])).all()


def test_mixed_precision_and_accumulation_and_tensorboard(recipe, layout_files, tiny_bert_dir, tmp_path) -> None:
    output_dir = tmp_path / "out"
    recipe.main(run_args(tiny_bert_dir, layout_files["triplets"], output_dir, bf16="true", use_cpu="true",
                         gradient_accumulation_steps=2, max_steps=6, eval_steps=3, save_steps=3,
                         logging_steps=2, report_to="tensorboard"))
    assert all(np.isfinite(losses(output_dir)))
    # transformers 5 writes tensorboard logs to output_dir/runs/<date>_<host> (TENSORBOARD_LOGGING_DIR overrides)
    assert list((checkpoint_dir(output_dir) / "runs").rglob("events.out.tfevents.*")), "tensorboard wrote no event file"


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return SentenceEncoder.from_pretrained(folder).state_dict()


def test_resume_from_checkpoint_matches_an_uninterrupted_run(recipe, layout_files, tiny_bert_dir, tmp_path) -> None:
    common = {"max_steps": 8, "save_steps": 4, "eval_steps": 4, "load_best_model_at_end": "false"}
    recipe.main(run_args(tiny_bert_dir, layout_files["unsupervised"], tmp_path / "full", **common))

    # "Stop" after step 4: keep only the first checkpoint of an identical run, then resume from it.
    recipe.main(run_args(tiny_bert_dir, layout_files["unsupervised"], tmp_path / "half", **common))
    checkpoint = tmp_path / "half-checkpoints" / "checkpoint-4"
    subprocess.run(["rm", "-rf", str(tmp_path / "half")], check=True)
    for path in checkpoint.parent.iterdir():
        if path != checkpoint:
            subprocess.run(["rm", "-rf", str(path)], check=True)
    recipe.main(run_args(tiny_bert_dir, layout_files["unsupervised"], tmp_path / "half",
                         resume_from_checkpoint=checkpoint, **common))

    full, resumed = final_weights(tmp_path / "full"), final_weights(tmp_path / "half")
    assert full.keys() == resumed.keys()
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)


def test_accelerate_launch_two_processes(layout_files, tiny_bert_dir, tmp_path) -> None:
    output_dir = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO_ROOT / "recipes" / "simcse.py"),
               *run_args(tiny_bert_dir, layout_files["triplets"], output_dir, max_steps=4, save_steps=4, eval_steps=4,
                         per_device_train_batch_size=8)]
    completed = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert (output_dir / "results.json").is_file()
    state = json.loads((checkpoint_dir(output_dir) / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert np.isfinite(SentenceEncoder.from_pretrained(output_dir).encode(["x y"])).all()


def test_the_model_keeps_its_inference_length_and_no_checkpoints(recipe, layout_files, tiny_bert_dir, tmp_path,
                                                                 capsys) -> None:
    """Training at max_seq_length 24 must not save a model that truncates at 24 (SimCSE trains short and
    is used at full length), and the model folder holds no checkpoints."""
    from sentence_transformers import SentenceTransformer

    base = SentenceEncoder.from_pretrained(tiny_bert_dir).max_seq_length
    assert base > 24
    output_dir = tmp_path / "out"
    recipe.main(run_args(tiny_bert_dir, layout_files["pairs"], output_dir, max_steps=4, eval_steps=4, save_steps=4,
                         keep_checkpoints="false"))
    assert SentenceEncoder.from_pretrained(output_dir).max_seq_length == base
    assert SentenceTransformer(str(output_dir), device="cpu").max_seq_length == base
    progress = capsys.readouterr().err  # every evaluation (before, during, after training) shows a bar
    assert progress.count("Encoding sts-dev") >= 3 and "Encoding sts-test" in progress and "text/s" in progress
    assert not list(output_dir.glob("checkpoint-*")) and not checkpoint_dir(output_dir).exists()

    explicit = tmp_path / "explicit"
    recipe.main(run_args(tiny_bert_dir, layout_files["pairs"], explicit, max_steps=2, eval_steps=2, save_steps=2,
                         inference_max_seq_length=40, checkpoint_dir=tmp_path / "ckpt"))
    assert SentenceEncoder.from_pretrained(explicit).max_seq_length == 40
    assert list((tmp_path / "ckpt").glob("checkpoint-*")) and not list(explicit.glob("checkpoint-*"))


def test_unknown_config_key_names_the_closest(recipe, tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("learning_rte: 0.001\n")
    with pytest.raises(ValueError, match=r"unknown key 'learning_rte'; did you mean 'learning_rate'\?"):
        recipe.parse_arguments([str(config)])


def test_config_file_then_flags(recipe, tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"output_dir": str(tmp_path), "max_steps": 5, "temperature": 0.1}))
    _, _, training_args, _ = recipe.parse_arguments(["--config", str(config), "--max_steps", "7"])
    assert (training_args.max_steps, training_args.temperature) == (7, 0.1)


def test_paper_configs_parse(recipe) -> None:
    for name in ("unsup_simcse.yaml", "sup_simcse.yaml"):
        model_args, _, training_args, _ = recipe.parse_arguments([str(REPO_ROOT / "recipes" / "configs" / name)])
        assert model_args.pooling == "cls" and model_args.head
        assert training_args.max_seq_length == 32 and training_args.temperature == 0.05
    assert recipe.parse_arguments([str(REPO_ROOT / "recipes/configs/unsup_simcse.yaml")])[0].head_at_inference is False
