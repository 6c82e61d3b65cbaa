"""Data that would train on the wrong thing is refused, or warned about, naming the column and the mode
chosen (issue #15, class 3)."""

from __future__ import annotations

import json
import logging

import pytest

from contrasent.data import infer_layout, load_training_file
from contrasent.data.validation import validate_training_data


def check(path):
    dataset = load_training_file(path)
    layout = infer_layout(dataset.column_names, source=str(path))
    validate_training_data(dataset, layout, source="train_dataset")
    return dataset, layout


def rows(header: str, *lines: str, repeat: int = 1) -> str:
    return header + "\n" + "".join(line + "\n" for line in lines) * repeat


REFUSED = [
    # the examples
    ("lable.csv", rows("text,lable", "a cat sat,0", "a dog ran,1"),
     ["column 'lable' holds numbers ('0', '1'), not texts (did you mean 'label'?)",
      "it is used as the positive of 'pairs' data (anchor 'text', positive 'lable')"]),
    ("similarity.csv", rows("text_a,text_b,similarity", "a cat sat,a cat sits,4.5", "a dog ran,stocks fell,0.2"),
     ["column 'similarity' holds numbers ('4.5', '0.2'), not texts: name a similarity score column 'score'",
      ("it is used as the hard negative of 'pairs' data (anchor 'text_a', positive 'text_b', hard negative "
      "'similarity')")]),
    ("identical.txt", rows("", "the same sentence", repeat=64)[1:],
     ["all 64 rows are the same (text='the same sentence')", "the loss is 0 and nothing is learnt"]),
    # the same class
    ("capital.csv", rows("text,Label", "a cat sat,0", "a dog ran,1"), ["column 'Label' holds numbers", "'label'?"]),
    ("socre.tsv", rows("s1\ts2\tsocre", "a\tb\t4.5", "c\td\t1.0"), ["column 'socre' holds numbers", "'score'?"]),
    ("numbers.txt", "1\n2\n3\n4\n", ["column 'text' holds numbers ('1', '2', '3', ...)",
                                     "the text of 'unsupervised' data (text 'text')"]),
    ("idx.csv", rows("sentence1,sentence2,idx", "a cat sat,a cat sits,17", "a dog ran,a dog runs,18"),
     ["column 'idx' holds numbers ('17', '18')"]),
    ("ids.jsonl", "".join(json.dumps({"_id": f"doc{i}", "text": f"text number {i}"}) + "\n" for i in range(4)),
     ["column '_id' looks like an id column ('doc0', 'doc1', 'doc2', ...): remove it",
      "the anchor of 'pairs' data (anchor '_id', positive 'text')"]),
    ("topics.csv", rows("text,Label", "a cat sat,pets", "a dog ran,pets", "stocks fell,money", repeat=4),
     ["column 'Label' is read as texts, not as 'label' (did you mean 'label'?)"]),
    ("one_label.csv", rows("text,label", "a cat sat,3", "a dog ran,3"),
     ["every row has 'label' 3; training needs at least two labels"]),
    ("one_pair_label.csv", rows("s1,s2,label", "a,b,1", "c,d,1"),
     ["every row has 'label' 1; training needs similar (1) and dissimilar (0) pairs"]),
    ("one_score.csv", rows("s1,s2,score", "a,b,2.5", "c,d,2.5"),
     ["every row has 'score' 2.5; a score-ranking loss learns from pairs whose scores differ"]),
]


@pytest.mark.parametrize(("name", "content", "messages"), REFUSED, ids=[case[0] for case in REFUSED])
def test_data_that_trains_on_the_wrong_thing_is_refused(tmp_path, name, content, messages) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        check(path)
    for message in messages:
        assert message in str(caught.value)
    assert str(path) in str(caught.value)


WARNED = [
    ("gold_label.csv", rows("premise,hypothesis,gold_label", "a cat sat,a cat sits,entailment",
                            "a dog ran,a dog sleeps,contradiction", "it rains,it is wet,neutral", repeat=5),
     [("column 'gold_label' holds only 3 distinct single words ('contradiction', 'entailment', 'neutral') over "
      "15 rows"), "it is used as the hard negative of 'pairs' data"]),
    ("lable_texts.csv", rows("text,lable", "a cat sat,a small cat", "a dog ran,a fast dog"),
     ["column 'lable' is read as texts, not as 'label' (did you mean 'label'?)",
      "the positive of 'pairs' data (anchor 'text', positive 'lable')"]),
    ("postive.csv", rows("anchor,postive", "a cat sat,a cat sits", "a dog ran,a dog runs"),
     ["column 'postive' is not a known column name (did you mean 'positive'?)"]),
    ("order.jsonl", "".join(json.dumps({"negative": f"no {i}", "query": f"q {i}", "positive": f"yes {i}"}) + "\n"
                            for i in range(4)),
     [("columns ['negative', 'query', 'positive'] are taken in the order of their roles: "
      "['query', 'positive', 'negative']")]),
]


@pytest.mark.parametrize(("name", "content", "messages"), WARNED, ids=[case[0] for case in WARNED])
def test_data_that_looks_wrong_is_warned_about_once(tmp_path, caplog, name, content, messages) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        check(path)
    for message in messages:
        assert caplog.text.count(message) == 1, caplog.text


@pytest.mark.parametrize(("content", "labels"), [
    ("\ufefflabel,text\n0,a cat sat\n1,a dog ran\n", [0, 1]),  # Excel's byte-order mark
    ("text, label\na cat sat, 0\na dog ran, 1\n", [0, 1]),  # a space after the comma
])
def test_a_label_column_behind_a_bom_or_a_space_is_a_label_column(tmp_path, content, labels) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    dataset, layout = check(path)
    assert (layout.mode, layout.label_column, dataset["label"]) == ("labels", "label", labels)


def test_columns_named_for_their_roles_are_used_in_role_order(tmp_path) -> None:
    path = tmp_path / "order.jsonl"
    path.write_text(WARNED[3][1], encoding="utf-8")
    assert check(path)[1].text_columns == ("query", "positive", "negative")


def test_ordinary_data_passes_silently(tmp_path, caplog, data_dir) -> None:
    with caplog.at_level(logging.WARNING):
        check(data_dir / "snli_senteval" / "nli_triples_snli_dev_test.csv")
        check(data_dir / "wiki1m_prefix" / "wiki1m_for_simcse.first11914.txt")
    assert "column" not in caplog.text
