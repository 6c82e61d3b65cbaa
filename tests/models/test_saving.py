"""A save replaces only what is ours to replace (issue #15, class 2).

``save_pretrained`` and ``SemanticIndex.save`` (and ``contrasent search --index``) write through
:func:`contrasent.models.atomic_folder.atomic_folder`: nothing absent, an empty folder or an earlier save
of the same kind is replaced; a file or a folder of other things is refused before anything is
written, and left exactly as it was.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from contrasent import SemanticIndex, SentenceEncoder


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> SentenceEncoder:
    return SentenceEncoder.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def index(encoder) -> SemanticIndex:
    return SemanticIndex.build(["one document", "another document"], encoder, ids=["a", "b"])


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (the parent included, so hidden leftovers show) with a file's bytes."""
    return {str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
            for path in sorted(root.rglob("*"))}


def a_file(target: Path) -> None:
    target.write_text("my notes")


def a_folder_of_documents(target: Path) -> None:
    (target / "drafts").mkdir(parents=True)
    (target / "README.md").write_text("my readme")
    (target / "drafts" / "a.txt").write_text("a draft")


def a_link_to_a_file(target: Path) -> None:
    (target.parent / "real.txt").write_text("my notes")
    target.symlink_to(target.parent / "real.txt")


def a_search_index(target: Path, index: SemanticIndex) -> None:
    index.save(target)


def a_model(target: Path, encoder: SentenceEncoder) -> None:
    encoder.save_pretrained(target)


FOREIGN_TO_A_MODEL = {
    "a file": (a_file, r"is a file; refusing to replace it with a model folder"),
    "a link to a file": (a_link_to_a_file, r"real.txt is a file; refusing to replace it"),
    "a folder of documents": (a_folder_of_documents, (r"is a folder of other files \(2 entries: README.md, drafts\) "
                                                     r"and holds no contrasent_config.json")),
    "a search index": (a_search_index, r"holds no contrasent_config.json, so it is not a model saved by contrasent"),
}
FOREIGN_TO_AN_INDEX = {
    "a file": (a_file, r"is a file; refusing to replace it with a search index folder"),
    "a folder of documents": (a_folder_of_documents, r"holds no index.json, so it is not a search index"),
    "a model": (a_model, r"holds no index.json"),
}


def prepare(make, target: Path, encoder, index) -> None:
    if make is a_search_index:
        make(target, index)
    elif make is a_model:
        make(target, encoder)
    else:
        make(target)


@pytest.mark.parametrize("case", sorted(FOREIGN_TO_A_MODEL))
def test_save_pretrained_refuses_what_is_not_a_model_and_leaves_it_untouched(case, encoder, index, tmp_path,
                                                                              monkeypatch) -> None:
    make, pattern = FOREIGN_TO_A_MODEL[case]
    target = tmp_path / "f"
    prepare(make, target, encoder, index)
    before = snapshot(tmp_path)
    monkeypatch.setattr(encoder.backbone, "save_pretrained", lambda *a, **k: pytest.fail("saved before refusing"))
    with pytest.raises(FileExistsError, match=pattern):
        encoder.save_pretrained(target)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", sorted(FOREIGN_TO_AN_INDEX))
def test_an_index_refuses_what_is_not_an_index_and_leaves_it_untouched(case, encoder, index, tmp_path) -> None:
    make, pattern = FOREIGN_TO_AN_INDEX[case]
    target = tmp_path / "f"
    prepare(make, target, encoder, index)
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=pattern):
        index.save(target)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["a file", "a folder of documents"])
def test_search_refuses_an_index_path_before_encoding(case, tiny_bert_dir, tmp_path, capsys) -> None:
    from contrasent.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one document\nanother document\n")
    make, pattern = FOREIGN_TO_AN_INDEX[case]
    make(tmp_path / "f")
    before = snapshot(tmp_path)
    status = main(["search", str(tiny_bert_dir), "document", "--corpus", str(corpus), "--index", str(tmp_path / "f"),
                   "--no-progress"])
    error = capsys.readouterr().err
    assert status == 1
    assert re.search(pattern, error) and error.count("\n") == 1, error
    assert "encoding" not in error
    assert snapshot(tmp_path) == before


def test_what_may_be_replaced_is(encoder, index, tmp_path) -> None:
    """Nothing, an empty folder, an earlier save of the kind; with exist_ok, any folder, keeping other entries."""
    encoder.save_pretrained(tmp_path / "new" / "model")  # missing parents are created
    (tmp_path / "empty").mkdir()
    encoder.save_pretrained(tmp_path / "empty")
    encoder.save_pretrained(tmp_path / "empty")  # an earlier model
    index.save(tmp_path / "index")
    index.save(tmp_path / "index")
    a_folder_of_documents(tmp_path / "run")
    encoder.save_pretrained(tmp_path / "run", exist_ok=True)  # a trainer's output_dir
    assert (tmp_path / "run" / "drafts" / "a.txt").read_text() == "a draft"
    for folder in ("new/model", "empty", "run"):
        np.testing.assert_array_equal(SentenceEncoder.from_pretrained(tmp_path / folder).encode(["x"]),
                                      encoder.encode(["x"]))
    assert SemanticIndex.load(tmp_path / "index", encoder).ids == ["a", "b"]
    assert not [p for p in tmp_path.rglob(".*saving-*")], "no temporary folder left behind"


def test_an_earlier_saves_stale_files_go_and_other_entries_stay(tiny_bert_dir, encoder, tmp_path) -> None:
    """Re-saving a model whose pooling sentence-transformers cannot read drops the old modules.json (it
    would make sentence-transformers pool the old way); a faiss.index the new index lacks goes too."""
    target = tmp_path / "model"
    encoder.save_pretrained(target)
    (target / "checkpoint-10").mkdir()
    (target / "notes.txt").write_text("mine")
    SentenceEncoder.from_pretrained(tiny_bert_dir, pooling="first_last_avg").save_pretrained(target)
    left = sorted(p.name for p in target.iterdir())
    assert not {"modules.json", "1_Pooling", "sentence_bert_config.json"} & set(left)
    assert {"checkpoint-10", "notes.txt"} <= set(left)

    pytest.importorskip("faiss")
    flat = SemanticIndex.build(["one document", "another document"], encoder, backend="faiss")
    flat.search("document", top_k=1)  # builds the faiss index, saved with it
    flat.save(tmp_path / "index")
    assert (tmp_path / "index" / "faiss.index").is_file()
    SemanticIndex.build(["two other", "documents"], encoder).save(tmp_path / "index")
    assert not (tmp_path / "index" / "faiss.index").exists()


def test_a_saved_folder_has_the_usual_permissions(encoder, tmp_path) -> None:
    """Not the private mode (0o700) of a temporary folder: others can read a model as they can any folder."""
    mask = os.umask(0o022)
    try:
        encoder.save_pretrained(tmp_path / "model")
        assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
        (tmp_path / "model").chmod(0o750)
        encoder.save_pretrained(tmp_path / "model")  # a replaced folder keeps its mode
        assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o750
    finally:
        os.umask(mask)


@pytest.mark.parametrize("target", [None, "", 3])
def test_a_target_that_is_no_path_is_named(encoder, target) -> None:
    with pytest.raises(TypeError, match=r"the folder to save to must be a non-empty path .*got"):
        encoder.save_pretrained(target)


def test_the_model_folder_rule_recognises_what_the_trainer_writes(encoder, tmp_path) -> None:
    """The trainer's checkpoints are model folders, so a checkpoint step written twice replaces itself."""
    encoder.save_pretrained(tmp_path / "checkpoint-5")
    (tmp_path / "checkpoint-5" / "optimizer.pt").write_bytes(b"state")
    encoder.save_pretrained(tmp_path / "checkpoint-5")
    assert json.loads((tmp_path / "checkpoint-5" / "contrasent_config.json").read_text())["pooling"] == "mean"
    assert (tmp_path / "checkpoint-5" / "optimizer.pt").read_bytes() == b"state"
    np.testing.assert_array_equal(SentenceEncoder.from_pretrained(tmp_path / "checkpoint-5").encode(["x"]),
                                  encoder.encode(["x"]))


def test_without_renameat2_a_neighbour_named_like_the_parking_spot_is_untouched(encoder, tmp_path,
                                                                                 monkeypatch) -> None:
    """Where the OS cannot swap two folders at once, the old one is parked under the temporary folder's
    unique name, not under ``<target>.old``, which may be the user's."""
    from contrasent.models import atomic_folder

    monkeypatch.setattr(atomic_folder, "_renameat2", lambda: None)
    encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "model.old").mkdir()
    (tmp_path / "model.old" / "mine.txt").write_text("mine")
    encoder.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model.old" / "mine.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.old"]
    np.testing.assert_array_equal(SentenceEncoder.from_pretrained(tmp_path / "model").encode(["x"]),
                                  encoder.encode(["x"]))
