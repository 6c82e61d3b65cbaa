"""STS benchmark files and data sets: sentence pairs with gold similarity scores (:class:`STSData`),
in the formats their public releases use.

Every reader raises :class:`~contrasent.data.files.DataFormatError` naming the file, the line and what was
expected when a file does not parse, so that a bad file never turns into a silently wrong figure. Where
the published protocol skips an item (a pair without a gold score), the reader skips it too and counts it.

Formats (see ``../shared/data/README.md``):

- STS Benchmark (``sts-{train,dev,test}.csv``): TSV without header; fields 4, 5, 6 are score, sentence 1,
  sentence 2. Some rows of the original release carry two extra source fields; quotes are plain text.
- SemEval STS 2012-2016 (``STS.input.<subset>.txt`` and ``STS.gs.<subset>.txt``): the input file holds
  sentence 1 TAB sentence 2 (STS16 adds two source fields); the gold file one score per line, an empty
  line marking a pair that was not scored.
- SICK (``SICK_{train,trial,test_annotated}.txt``, ``SICK_full_release.txt``): TSV with a header naming
  ``sentence_A``, ``sentence_B``, ``relatedness_score``; some copies have CRLF line ends.

Sentences have their whitespace runs collapsed to one space (SentEval splits sentences on whitespace and
joins the tokens with one space before encoding them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrasent.data.files import DataFormatError

logger = logging.getLogger(__name__)

#: The subsets SentEval evaluates for each SemEval STS year (STS13 has no SMT subset: it is not distributed).
SENTEVAL_STS_SUBSETS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}


@dataclass(frozen=True)
class STSData:
    """Sentence pairs with gold similarity scores.

    Attributes:
        name: what the pairs are (e.g. ``"STS-B test"`` or an STS subset name such as ``"MSRpar"``).
        sentences1, sentences2: the two sides of each pair, same length.
        scores: gold similarity score of each pair.
        n_unscored: pairs dropped because the gold file gives them no score (the SentEval protocol skips them).
    """

    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    n_unscored: int = 0

    def __post_init__(self) -> None:
        if not len(self.sentences1) == len(self.sentences2) == len(self.scores):
            raise DataFormatError(
                f"{self.name}: sentences1, sentences2 and scores must have the same length, got "
                f"{len(self.sentences1)}, {len(self.sentences2)} and {len(self.scores)}"
            )
        if not self.scores:
            raise DataFormatError(f"{self.name}: no scored sentence pair")

    def __len__(self) -> int:
        return len(self.scores)


def _normalize_space(text: str) -> str:
    return " ".join(text.split())


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file without their line ends (LF or CRLF)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open(encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _parse_float(value: str, where: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DataFormatError(f"{where}: expected {what} as a number, got {value!r}") from None


def _sentence(value: str, where: str, which: str) -> str:
    text = _normalize_space(value)
    if not text:
        raise DataFormatError(f"{where}: {which} is empty")
    return text


def read_stsb(path: str | Path, name: str | None = None) -> STSData:
    """Read an STS Benchmark split (``sts-train.csv``, ``sts-dev.csv`` or ``sts-test.csv``).

    Works on the original release (7 or 9 TAB-separated fields a row) and on SentEval's tokenized copy
    (7 fields). Quotes are text: the file is split on TAB only.
    """
    path = Path(path)
    s1, s2, scores = [], [], []
    for number, line in enumerate(_read_lines(path), start=1):
        where = f"{path}, line {number}"
        fields = line.strip().split("\t")
        if len(fields) < 7:
            raise DataFormatError(
                f"{where}: expected at least 7 TAB-separated fields "
                f"(genre, file, year, id, score, sentence1, sentence2), got {len(fields)}"
            )
        scores.append(_parse_float(fields[4], where, "the score (field 5)"))
        s1.append(_sentence(fields[5], where, "sentence1 (field 6)"))
        s2.append(_sentence(fields[6], where, "sentence2 (field 7)"))
    return STSData(name or path.stem, s1, s2, scores)


def read_sts_subset(input_path: str | Path, gold_path: str | Path, name: str | None = None) -> STSData:
    """Read one SemEval STS subset: ``STS.input.<subset>.txt`` and its ``STS.gs.<subset>.txt``.

    Pairs whose gold line is empty were not scored by the annotators and are skipped (counted in
    ``n_unscored``), as SentEval does. Only the first two fields of an input line are used (STS16 adds
    two source fields).
    """
    input_path, gold_path = Path(input_path), Path(gold_path)
    inputs, golds = _read_lines(input_path), _read_lines(gold_path)
    if len(inputs) != len(golds):
        raise DataFormatError(
            f"{gold_path} has {len(golds)} lines but {input_path} has {len(inputs)}: "
            "expected one gold line (possibly empty) per input pair"
        )
    s1, s2, scores, unscored = [], [], [], 0
    for number, (line, gold) in enumerate(zip(inputs, golds), start=1):
        if not gold.strip():
            unscored += 1
            continue
        where = f"{input_path}, line {number}"
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataFormatError(f"{where}: expected sentence1 TAB sentence2, got {len(fields)} field(s)")
        scores.append(_parse_float(gold.strip(), f"{gold_path}, line {number}", "the gold score"))
        s1.append(_sentence(fields[0], where, "sentence1"))
        s2.append(_sentence(fields[1], where, "sentence2"))
    if unscored:
        logger.info("%s: skipped %d unscored pairs (empty gold line)", gold_path, unscored)
    subset = name or input_path.name.removeprefix("STS.input.").removesuffix(".txt")
    return STSData(subset, s1, s2, scores, n_unscored=unscored)


def read_sts_year(folder: str | Path, subsets: Iterable[str] | None = None) -> dict[str, STSData]:
    """Read the subsets of one SemEval STS year from a folder such as ``STS12-en-test/``.

    Args:
        folder: the folder holding ``STS.input.<subset>.txt`` / ``STS.gs.<subset>.txt``.
        subsets: which subsets to read. Default: SentEval's list for the year when the folder name starts
            with ``STS12`` ... ``STS16``, else every ``STS.input.*.txt`` in the folder.

    Returns:
        subset name -> :class:`STSData`, in SentEval's order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: STS folder not found")
    if subsets is None:
        year = folder.name[:5]
        if year in SENTEVAL_STS_SUBSETS:
            subsets = SENTEVAL_STS_SUBSETS[year]
        else:
            subsets = sorted(
                p.name.removeprefix("STS.input.").removesuffix(".txt") for p in folder.glob("STS.input.*.txt")
            )
    result = {
        subset: read_sts_subset(folder / f"STS.input.{subset}.txt", folder / f"STS.gs.{subset}.txt", subset)
        for subset in subsets
    }
    if not result:
        raise DataFormatError(f"{folder}: no STS.input.<subset>.txt file found")
    return result


def read_sick(path: str | Path, name: str | None = None) -> STSData:
    """Read a SICK relatedness file (SemEval-2014 split files or the full release).

    Columns are found by the header's names ``sentence_A``, ``sentence_B`` and ``relatedness_score``;
    CRLF line ends are accepted.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise DataFormatError(f"{path}: empty file, expected a header line")
    header = lines[0].split("\t")
    columns = {}
    for column in ("sentence_A", "sentence_B", "relatedness_score"):
        if column not in header:
            raise DataFormatError(f"{path}, line 1: expected a header with column {column!r}, got {header}")
        columns[column] = header.index(column)
    s1, s2, scores = [], [], []
    for number, line in enumerate(lines[1:], start=2):
        where = f"{path}, line {number}"
        fields = line.split("\t")
        if len(fields) < len(header):
            raise DataFormatError(f"{where}: expected {len(header)} TAB-separated fields, got {len(fields)}")
        scores.append(_parse_float(fields[columns["relatedness_score"]], where, "relatedness_score"))
        s1.append(_sentence(fields[columns["sentence_A"]], where, "sentence_A"))
        s2.append(_sentence(fields[columns["sentence_B"]], where, "sentence_B"))
    return STSData(name or path.stem, s1, s2, scores)


_STS_COLUMNS = {
    "sentence1": ("sentence1", "sentence_A", "sentence_a", "sentence_1", "text1", "s1"),
    "sentence2": ("sentence2", "sentence_B", "sentence_b", "sentence_2", "text2", "s2"),
    "score": ("score", "relatedness_score", "similarity_score", "label", "labels"),
}


def _pick_column(
    columns: list[str], role: str, given: str | None, candidates: tuple[str, ...], where: str
) -> str:
    if given is not None:
        if given not in columns:
            raise DataFormatError(f"{where}: no column {given!r} (the {role} column); columns are {columns}")
        return given
    for candidate in candidates:
        if candidate in columns:
            return candidate
    raise DataFormatError(
        f"{where}: no {role} column found among {columns}; expected one of {list(candidates)} "
        f"or pass {role}_column="
    )


def sts_from_dataset(
    dataset: Any,
    name: str = "dataset",
    sentence1_column: str | None = None,
    sentence2_column: str | None = None,
    score_column: str | None = None,
) -> STSData:
    """Build :class:`STSData` from a ``datasets.Dataset`` (or any object with ``column_names`` and
    column access), e.g. ``load_dataset("mteb/stsbenchmark-sts", split="test")``.

    Columns default to the usual names: ``sentence1``/``sentence_A``, ``sentence2``/``sentence_B`` and
    ``score``/``relatedness_score``/``label``. Scores are used as given: Spearman correlation does not
    depend on their scale.
    """
    columns = list(dataset.column_names)
    c1 = _pick_column(columns, "sentence1", sentence1_column, _STS_COLUMNS["sentence1"], name)
    c2 = _pick_column(columns, "sentence2", sentence2_column, _STS_COLUMNS["sentence2"], name)
    cs = _pick_column(columns, "score", score_column, _STS_COLUMNS["score"], name)
    s1, s2, scores = [], [], []
    for row, (a, b, score) in enumerate(zip(dataset[c1], dataset[c2], dataset[cs])):
        where = f"{name}, row {row}"
        s1.append(_sentence(str(a), where, c1))
        s2.append(_sentence(str(b), where, c2))
        scores.append(_parse_float(str(score), where, cs))
    return STSData(name, s1, s2, scores)
