"""The import paths of contrasent before the one-folder-per-stage layout (issue #13) keep working.

Each old path of :data:`contrasent._moved.MOVED` warns (``DeprecationWarning`` naming the new path) and is
the new module itself, with the names users imported from it; ``contrasent.search`` and
``contrasent.cli``, modules that became packages of the same name, keep their names without a warning.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from contrasent._moved import MOVED

SRC = Path(__file__).resolve().parents[1] / "src"

# old path -> names that the README, the CHANGELOG, the benchmarks or the tests imported from it
USED_NAMES: dict[str, tuple[str, ...]] = {
    "contrasent.encoder": ("SentenceEncoder", "ProjectionHead"),
    "contrasent.config": ("EncoderConfig",),
    "contrasent.pooling": ("POOLING_MODES", "SENTENCE_TRANSFORMERS_POOLING_FLAGS", "check_pooling_mode", "pool"),
    "contrasent.padding_free": ("equal_length_groups", "pack", "position_ids", "supports_padding_free", "unpack"),
    "contrasent.model_io": ("atomic_folder", "resolve_model_dir"),
    "contrasent.model_card": ("CardData", "load_card_data", "render_model_card"),
    "contrasent.hub": ("push_to_hub",),
    "contrasent.metrics": ("alignment", "uniformity"),
    "contrasent.training.false_negatives": ("false_negative_mask", "similarity_threshold_mask"),
    "contrasent.mining": ("mine_hard_negatives", "MiningStats"),
    "contrasent.serve": ("Limits", "create_app", "serve"),
    # the CLI modules were internal: their functions took the one-module-per-subcommand names
    "contrasent.mining_cli": ("add_parser", "run"),
    "contrasent.cli_search": ("add_parser", "run"),
    "contrasent.evaluation.readers": ("read_beir", "read_stsb", "read_sick", "read_sts_year", "RetrievalData",
                                      "STSData", "Document", "DataFormatError"),
}
# modules that became packages at the same path: no alias, no warning, the same names
SAME_PATH: dict[str, tuple[str, ...]] = {
    "contrasent.search": ("SemanticIndex", "SearchResult", "read_corpus"),
    "contrasent.cli": ("build_parser", "main"),
}


def test_every_old_path_has_its_used_names() -> None:
    assert set(USED_NAMES) == set(MOVED)
    assert not set(SAME_PATH) & set(MOVED)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_is_the_new_module(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    new = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED[old]};") as caught:
        module = importlib.import_module(old)
    assert module is new
    assert sys.modules[old] is new
    assert new.__name__ == MOVED[old]
    assert new.__spec__.name == MOVED[old]  # the alias's spec did not replace the module's own
    assert new.__spec__.origin == new.__file__
    assert len(caught) == 1
    for name in USED_NAMES[old]:
        assert getattr(module, name) is getattr(new, name)


@pytest.mark.parametrize("old", ["contrasent.model_io", "contrasent.training.false_negatives"])
def test_from_import_of_an_old_path_gives_the_new_names(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    new = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)
    parent, _, leaf = old.rpartition(".")
    monkeypatch.delattr(sys.modules[parent], leaf, raising=False)
    name = USED_NAMES[old][0]
    # what ``from parent import leaf`` and ``from old import name`` run
    with pytest.warns(DeprecationWarning, match=MOVED[old]):
        assert getattr(__import__(parent, fromlist=[leaf]), leaf) is new
    assert getattr(__import__(old, fromlist=[name]), name) is getattr(new, name)


@pytest.mark.parametrize("path", sorted(SAME_PATH))
def test_a_module_that_became_a_package_keeps_its_names(path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        package = importlib.import_module(path)
    assert hasattr(package, "__path__")
    for name in SAME_PATH[path]:
        assert callable(getattr(package, name)), name


RELOAD_SCRIPT = """
import importlib, sys, warnings
from contrasent._moved import MOVED

warnings.simplefilter("ignore", DeprecationWarning)
for old, new_name in MOVED.items():
    new = importlib.import_module(new_name)
    before = dict(vars(new))
    assert importlib.import_module(old) is new
    assert importlib.reload(new) is new, old
    # a module redefines its classes and functions; a package's __init__ at least rebuilds its __all__
    redefined = [name for name, value in before.items()
                 if (getattr(value, "__module__", None) == new_name or name == "__all__")
                 and vars(new)[name] is not value]
    assert redefined, f"reloading {new_name} after importing {old} did not run its code again"
    leaf = "__init__.py" if hasattr(new, "__path__") else new_name.split(".")[-1] + ".py"
    assert new.__spec__.name == new_name and new.__spec__.origin.endswith(leaf)
print("reloaded", len(MOVED))
"""


def test_the_new_modules_still_reload_after_their_old_path_was_imported() -> None:
    """In a child process: reloading redefines classes, which must not leak into the other tests."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", RELOAD_SCRIPT], check=False, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"reloaded {len(MOVED)}"


def test_the_warning_names_the_importing_line_so_that_python_shows_it_by_default() -> None:
    """Python shows a DeprecationWarning by default only when it is attributed to ``__main__``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run([sys.executable, "-c", "import contrasent.metrics"], check=False, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "<string>:1: DeprecationWarning: contrasent.metrics moved to contrasent.losses.geometry" in result.stderr
