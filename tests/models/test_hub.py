"""push_to_hub against a local stand-in for the Hub's HTTP API, and against a Hub that cannot be reached.

The stand-in is a real HTTP server on 127.0.0.1 implementing the four endpoints ``create_repo`` and
``upload_folder`` call: ``POST /api/repos/create``, ``POST /api/validate-yaml`` (the card's metadata,
checked here by parsing it with ``huggingface_hub.ModelCard``, model-index included),
``POST /api/models/{repo}/preupload/{revision}`` and ``POST /api/models/{repo}/commit/{revision}``
(ndjson). Its preupload answer puts every file in the
"regular" upload mode (content inline, base64, in the commit), as the real Hub does for small text
files; the real Hub would send safetensors through LFS/xet storage, which the stand-in does not
implement. The push runs in a child process with ``HF_ENDPOINT`` set, exactly as a user would point
``huggingface_hub`` at another endpoint.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from contrasent import SentenceEncoder

REPO_ID = "someone/tiny-encoder"
PUSH_SCRIPT = """
import sys
from contrasent import SentenceEncoder
from contrasent.models.card import CardData

encoder = SentenceEncoder.from_pretrained(sys.argv[1], pooling="cls", head=True, head_dim=16, normalize=True)
encoder.card_data = CardData(
    base_model="prajjwal1/bert-tiny", datasets=["princeton-nlp/datasets-for-simcse"],
    objective="InfoNCE over in-batch negatives (unsupervised SimCSE)",
    hyperparameters={"learning_rate": 3e-5, "temperature": 0.05},
    evaluation={"STS-B dev": {"spearman": 82.1}, "scifact": {"ndcg@10": 64.5}}, license="apache-2.0",
)
try:
    url = encoder.push_to_hub(sys.argv[2], private=True, save_directory=sys.argv[3], commit_message="first")
except OSError as error:
    print("OSError:", error)
    sys.exit(3)
print("pushed:", url)
"""


def run_push(model_dir: Path, endpoint: str, save_dir: Path) -> subprocess.CompletedProcess:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_TOKEN": "hf_standin_token",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([sys.executable, "-c", PUSH_SCRIPT, str(model_dir), REPO_ID, str(save_dir)],
                          check=False, env=env, capture_output=True, text=True, timeout=120)


def test_push_to_hub_uploads_a_loadable_model_with_a_parsable_card(hub, tiny_bert_dir, tmp_path) -> None:
    from huggingface_hub import ModelCard

    host, port = hub.server_address
    result = run_push(tiny_bert_dir, f"http://{host}:{port}", tmp_path / "local")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"http://{host}:{port}/{REPO_ID}/commit/" in result.stdout

    assert hub.created == [{"name": "tiny-encoder", "organization": "someone", "visibility": "private"}]
    posted = [path for method, path, _ in hub.calls if method == "POST"]
    assert posted[0] == "/api/repos/create"
    assert f"/api/models/{REPO_ID}/commit/main" in posted
    assert all(auth == "Bearer hf_standin_token" for _, _, auth in hub.calls)
    assert hub.messages == ["first"]
    assert hub.validated == 1

    uploaded = hub.repos / REPO_ID
    local = tmp_path / "local"
    local_files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert sorted(p.relative_to(uploaded).as_posix() for p in uploaded.rglob("*") if p.is_file()) == local_files
    assert {"README.md", "model.safetensors", "2_Dense/model.safetensors", "modules.json"} <= set(local_files)

    texts = ["a cat sits on the mat", "stocks fell sharply", "the weather is nice"]
    from_hub = SentenceEncoder.from_pretrained(uploaded)
    assert np.array_equal(from_hub.encode(texts), SentenceEncoder.from_pretrained(local).encode(texts))
    assert from_hub.card_data.evaluation["scifact"] == {"ndcg@10": 64.5}

    card = ModelCard.load(uploaded / "README.md")
    assert card.data.library_name == "sentence-transformers"
    assert card.data.pipeline_tag == "sentence-similarity"
    assert card.data.base_model == "prajjwal1/bert-tiny"
    assert card.data.datasets == ["princeton-nlp/datasets-for-simcse"]
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results == {("STS-B dev", "spearman"): 82.1, ("scifact", "ndcg@10"): 64.5}
    assert card.data.model_name == "tiny-encoder"
    assert f'model_id = "{REPO_ID}"' in card.text  # the usage code names the repository


PROTOCOL_PUSH_SCRIPT = """
import sys
from pathlib import Path
from contrasent.models.hub import push_to_hub

class Saver:
    def save_pretrained(self, save_directory, *, model_id=None):
        Path(save_directory).mkdir(parents=True)
        (Path(save_directory) / "weights.txt").write_text(f"saved as {model_id}")

print("pushed:", push_to_hub(Saver(), sys.argv[1]))
print("encoder imported:", "contrasent.models.encoder" in sys.modules)
"""


def test_push_to_hub_uploads_anything_that_saves_itself_without_loading_the_encoder(hub) -> None:
    host, port = hub.server_address
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "HF_ENDPOINT": f"http://{host}:{port}", "HF_TOKEN": "hf_standin_token",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(src)}
    env.pop("HF_HUB_OFFLINE", None)
    result = subprocess.run([sys.executable, "-c", PROTOCOL_PUSH_SCRIPT, REPO_ID], check=False, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"/{REPO_ID}/commit/" in result.stdout
    assert "encoder imported: False" in result.stdout
    assert (hub.repos / REPO_ID / "weights.txt").read_text() == f"saved as {REPO_ID}"


def test_hub_module_never_imports_the_encoder() -> None:
    """Not even for type checking: the encoder imports hub (for ``push_to_hub``), never the reverse."""
    import ast

    import contrasent.models.hub as hub_module

    tree = ast.parse(Path(hub_module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name and name.startswith("contrasent")}, imported


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when the block ends: connections are refused


def test_unreachable_hub_fails_clearly_and_leaves_the_local_save_complete(tiny_bert_dir, tmp_path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = run_push(tiny_bert_dir, endpoint, tmp_path / "local")
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stdout
    assert f"could not push to Hugging Face Hub repository '{REPO_ID}' at {endpoint}" in message
    assert f"saved completely in {tmp_path / 'local'}" in message
    encoder = SentenceEncoder.from_pretrained(tmp_path / "local")
    assert encoder.encode(["still loads"]).shape == (1, 16)
    assert (tmp_path / "local" / "README.md").is_file()


TRAINER_PUSH_SCRIPT = """
import sys
import datasets
from contrasent import ContrastiveTrainer, ContrastiveTrainingArguments, SentenceEncoder

encoder = SentenceEncoder.from_pretrained(sys.argv[1])
texts = [f"sentence number {i} about topic {i % 5}" for i in range(16)]
args = ContrastiveTrainingArguments(output_dir=sys.argv[3], hub_model_id=sys.argv[2], max_steps=2,
                                    per_device_train_batch_size=8, report_to="none", save_strategy="no",
                                    disable_tqdm=True)
trainer = ContrastiveTrainer(model=encoder, args=args, train_dataset=datasets.Dataset.from_dict({"text": texts}))
trainer.train()
print("pushed:", trainer.push_to_hub())
"""


def test_trainer_push_to_hub_uploads_the_trained_model_with_its_training_card(hub, tiny_bert_dir, tmp_path) -> None:
    from huggingface_hub import ModelCard

    host, port = hub.server_address
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "HF_ENDPOINT": f"http://{host}:{port}", "HF_TOKEN": "hf_standin_token",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(src)}
    env.pop("HF_HUB_OFFLINE", None)
    result = subprocess.run([sys.executable, "-c", TRAINER_PUSH_SCRIPT, str(tiny_bert_dir), REPO_ID,
                             str(tmp_path / "out")], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    uploaded = hub.repos / REPO_ID
    texts = ["a cat sits on the mat", "stocks fell sharply"]
    assert np.array_equal(SentenceEncoder.from_pretrained(uploaded).encode(texts),
                          SentenceEncoder.from_pretrained(tmp_path / "out").encode(texts))
    card = ModelCard.load(uploaded / "README.md")
    assert "InfoNCE on unsupervised data (columns: text)" in card.text
    assert "learning_rate" in card.text and "temperature" in card.text
