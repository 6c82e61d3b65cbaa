"""Every Python block of the README runs as written.

Each ```python block runs in its own process, in an empty folder, with two substitutions that stand in for
what this offline machine lacks: the Hub id ``sentence-transformers/all-MiniLM-L6-v2`` becomes the local
tiny BERT (a real model; the README's figures are not checked here, only that its code runs) and
``../shared/data`` becomes the data folder. ``push_to_hub`` goes to the local Hub stand-in
(``tests/hub_stand_in.py``) through ``HF_ENDPOINT``, as a user would point it at another Hub.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def python_blocks(readme: Path) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    text = readme.read_text(encoding="utf-8")
    return [(text[: match.start()].count("\n") + 1, match.group(1))
            for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)]


BLOCKS = python_blocks(REPO_ROOT / "README.md")


def test_the_readme_has_python_blocks_and_they_name_only_local_stand_ins() -> None:
    assert len(BLOCKS) >= 5
    for _, code in BLOCKS:  # a Hub id other than the one substituted here would need the network
        assert set(re.findall(r'from_pretrained\("([^"]+)"\)', code)) <= {HUB_MODEL}


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line: int, code: str, tmp_path: Path, hub, tiny_bert_dir: Path, data_dir: Path) -> None:
    runnable = code.replace(HUB_MODEL, str(tiny_bert_dir)).replace("../shared/data", str(data_dir))
    host, port = hub.server_address
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "HF_ENDPOINT": f"http://{host}:{port}",
           "HF_TOKEN": "hf_standin_token", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", runnable], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, f"README.md line {line}:\n{runnable}\n{result.stderr[-3000:]}"
