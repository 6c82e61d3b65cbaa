"""Semantic textual similarity (STS) evaluation, as SentEval and the SimCSE paper compute it.

The figure is the correlation between the cosine similarity of the two sentence embeddings and the gold
score, ×100. For the SemEval STS 2012-2016 years, whose subsets differ in score distribution, SentEval
offers three aggregations:

- ``all``: the subsets pooled into one list of pairs, one correlation (what the SimCSE paper reports);
- ``wmean``: the subsets' correlations averaged with their numbers of pairs as weights;
- ``mean``: the plain average of the subsets' correlations.

:class:`STSSuite` runs the 7 tasks of the SimCSE paper (STS12-16 "all", STS-B test, SICK-R test, Spearman)
and their average; :meth:`STSSuite.dev` the dev-set pair used during training (STS-B dev, SICK-R trial).

Reference: Gao, Yao, Chen. SimCSE: Simple Contrastive Learning of Sentence Embeddings. EMNLP 2021
(Appendix B on evaluation settings); Conneau, Kiela. SentEval. LREC 2018.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contrasent.evaluation.encoding import encode_texts
from contrasent.evaluation.report import markdown_table, save_results
from contrasent.evaluation.sts_data import STSData, read_sick, read_sts_year, read_stsb
from contrasent.models.encoding import Encoder
from contrasent.search.topk import l2_normalize

#: Data variants of the STS suite: which copies of the files under the data folder to read.
STS_VARIANTS = ("senteval", "raw")
#: The tasks of :meth:`STSSuite.from_data_dir`, in the SimCSE paper's order.
STS_TASKS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R")
#: Other names users know the tasks by (MTEB's), lower-cased -> ours.
TASK_ALIASES = {"stsbenchmark": "STS-B", "stsb": "STS-B", "sts-b": "STS-B", "sickr": "SICK-R",
                "sick-r": "SICK-R", "sick": "SICK-R", **{task.lower(): task for task in STS_TASKS[:5]}}


def resolve_tasks(names: Sequence[str] | None) -> tuple[str, ...]:
    """Task names as given (``STSBenchmark``, ``sick-r``, ``STS12``, ...) -> ours, in the paper's order;
    ``None`` -> all 7. Raises a ``ValueError`` naming an unknown task and the valid names."""
    if names is None:
        return STS_TASKS
    wanted = set()
    for name in names:
        task = TASK_ALIASES.get(name.lower())
        if task is None:
            raise ValueError(f"unknown STS task {name!r}; the tasks are {', '.join(STS_TASKS)}")
        wanted.add(task)
    return tuple(task for task in STS_TASKS if task in wanted)


def correlations(similarities: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Spearman and Pearson correlation ×100 between predicted similarities and gold scores.

    Spearman ranks ties by their average rank (``scipy.stats.spearmanr``, as SentEval).
    """
    from scipy.stats import pearsonr, spearmanr

    similarities = np.asarray(similarities, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    if similarities.shape != gold.shape or similarities.ndim != 1:
        raise ValueError(
            f"expected two 1-d arrays of the same length, got {similarities.shape} and {gold.shape}"
        )
    if len(gold) < 2:
        raise ValueError(f"a correlation needs at least 2 pairs, got {len(gold)}")
    return {
        "spearman": float(spearmanr(similarities, gold)[0]) * 100,
        "pearson": float(pearsonr(similarities, gold)[0]) * 100,
    }


def aggregate_subsets(subsets: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """SentEval's aggregations over subsets given as ``name -> (similarities, gold)``.

    Returns ``spearman`` / ``pearson`` (``all``: the subsets pooled), ``spearman_wmean`` /
    ``pearson_wmean``, ``spearman_mean`` / ``pearson_mean``, and ``<subset>/spearman`` / ``<subset>/pearson``
    for each subset. A single subset gives just ``spearman`` and ``pearson``.
    """
    if len(subsets) == 1:
        ((similarities, gold),) = subsets.values()
        return correlations(similarities, gold)
    per_subset = {name: correlations(sim, gold) for name, (sim, gold) in subsets.items()}
    weights = np.array([len(gold) for _, gold in subsets.values()], dtype=np.float64)
    pooled = correlations(
        np.concatenate([sim for sim, _ in subsets.values()]),
        np.concatenate([gold for _, gold in subsets.values()]),
    )
    metrics = dict(pooled)
    for measure in ("spearman", "pearson"):
        values = np.array([scores[measure] for scores in per_subset.values()])
        metrics[f"{measure}_wmean"] = float(np.average(values, weights=weights))
        metrics[f"{measure}_mean"] = float(np.mean(values))
    for name, scores in per_subset.items():
        for measure, value in scores.items():
            metrics[f"{name}/{measure}"] = value
    return metrics


class STSEvaluator:
    """Correlation between cosine similarity and gold scores for one STS task.

    Args:
        data: one :class:`STSData`, or several subsets (``name -> STSData``, e.g. from
            :func:`~contrasent.evaluation.sts_data.read_sts_year`) aggregated as SentEval does.
        name: the task name used in results (default: the data's name).
        batch_size: texts per ``encode`` call.
        show_progress_bar: show a progress bar while encoding.

    Calling the evaluator on a model returns a flat dict of metrics ×100: ``spearman`` and ``pearson``
    (for subsets, pooled "all"), plus ``*_wmean``, ``*_mean`` and per-subset values for subsets.
    """

    def __init__(
        self,
        data: STSData | Mapping[str, STSData],
        name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool = True,
    ) -> None:
        self.subsets = {data.name: data} if isinstance(data, STSData) else dict(data)
        if not self.subsets:
            raise ValueError("STSEvaluator needs at least one subset")
        self.name = name or (data.name if isinstance(data, STSData) else "+".join(self.subsets))
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar

    def similarities(self, model: Encoder) -> dict[str, np.ndarray]:
        """Cosine similarity of each pair, per subset."""
        texts = [text for data in self.subsets.values() for text in data.sentences1 + data.sentences2]
        embeddings = l2_normalize(
            encode_texts(model, texts, self.batch_size, self.show_progress_bar, desc=f"Encoding {self.name}")
        )
        result, start = {}, 0
        for name, data in self.subsets.items():
            n = len(data)
            left, right = embeddings[start : start + n], embeddings[start + n : start + 2 * n]
            result[name] = np.einsum("ij,ij->i", left.astype(np.float64), right.astype(np.float64))
            start += 2 * n
        return result

    def __call__(self, model: Encoder, output_path: str | Path | None = None) -> dict[str, float]:
        """The metrics of ``model``; also written to ``output_path`` as ``{name: metrics}`` JSON if given."""
        similarities = self.similarities(model)
        metrics = aggregate_subsets(
            {name: (similarities[name], np.asarray(data.scores)) for name, data in self.subsets.items()}
        )
        if output_path is not None:
            save_results({self.name: metrics}, output_path)
        return metrics


def _variant_folder(variant: str) -> str:
    if variant not in STS_VARIANTS:
        raise ValueError(f"variant must be one of {STS_VARIANTS}, got {variant!r}")
    return "senteval_tokenized" if variant == "senteval" else "raw"


def _stsb_path(data_dir: Path, split: str, variant: str) -> Path:
    folder = data_dir / "stsbenchmark"
    return (folder / "senteval_tokenized" if variant == "senteval" else folder) / f"sts-{split}.csv"


class STSSuite:
    """The 7 STS tasks of the SimCSE paper, or its 2 dev tasks, evaluated together.

    Args:
        evaluators: the tasks, each an :class:`STSEvaluator` named as it should appear in results.

    Build it with :meth:`from_data_dir` (test tasks) or :meth:`dev`. Calling it on a model returns
    ``task -> metrics`` plus ``"avg" -> {"spearman": ..., "pearson": ...}``: the average of the tasks'
    figures each rounded to 2 decimals first, as SimCSE's ``evaluation.py`` computes the "Avg." column.
    """

    def __init__(self, evaluators: list[STSEvaluator]) -> None:
        if not evaluators:
            raise ValueError("STSSuite needs at least one task")
        self.evaluators = evaluators

    @classmethod
    def from_data_dir(
        cls, data_dir: str | Path, variant: str = "senteval", tasks: Sequence[str] | None = None, **kwargs: Any
    ) -> STSSuite:
        """STS12-16 (pooled "all"), STS-B test and SICK-R test, read from a folder laid out like
        ``../shared/data`` (``senteval_sts/``, ``stsbenchmark/``, ``sick/``).

        Args:
            data_dir: the data folder.
            variant: ``"senteval"`` (default) reads SentEval's processed copies, the files that SentEval,
                and so SimCSE's published evaluation, read; ``"raw"`` the original releases.
            tasks: a subset of :data:`STS_TASKS` (MTEB's names such as ``STSBenchmark`` are accepted);
                default all 7. Only their files are read.
            **kwargs: passed to each :class:`STSEvaluator` (``batch_size``, ``show_progress_bar``).
        """
        data_dir = Path(data_dir)
        folder = _variant_folder(variant)
        readers = {
            **{year: lambda year=year: read_sts_year(data_dir / "senteval_sts" / folder / f"{year}-en-test")
               for year in STS_TASKS[:5]},
            "STS-B": lambda: read_stsb(_stsb_path(data_dir, "test", variant)),
            "SICK-R": lambda: read_sick(data_dir / "sick" / folder / "SICK_test_annotated.txt"),
        }
        return cls([STSEvaluator(readers[task](), task, **kwargs) for task in resolve_tasks(tasks)])

    @classmethod
    def dev(cls, data_dir: str | Path, variant: str = "senteval", **kwargs: Any) -> STSSuite:
        """The dev tasks for evaluation during training: STS-B dev and SICK-R trial (SentEval's SICK dev)."""
        data_dir = Path(data_dir)
        stsb = read_stsb(_stsb_path(data_dir, "dev", variant))
        sick = read_sick(data_dir / "sick" / _variant_folder(variant) / "SICK_trial.txt")
        return cls([STSEvaluator(stsb, "STS-B-dev", **kwargs), STSEvaluator(sick, "SICK-R-dev", **kwargs)])

    def __call__(
        self,
        model: Encoder,
        output_path: str | Path | None = None,
        on_task: Callable[[str, dict[str, float]], None] | None = None,
    ) -> dict[str, dict[str, float]]:
        """``task -> metrics`` and ``"avg"``.

        Each task's result is handed to ``on_task(name, metrics)`` and, with ``output_path``, written there
        as soon as the task finishes (a long run that is stopped keeps what it measured); the average
        comes last.
        """
        results: dict[str, dict[str, float]] = {}
        for evaluator in self.evaluators:
            results[evaluator.name] = evaluator(model)
            if on_task is not None:
                on_task(evaluator.name, results[evaluator.name])
            if output_path is not None:
                save_results(results, output_path)
        results["avg"] = {
            measure: sum(round(metrics[measure], 2) for metrics in results.values()) / len(results)
            for measure in ("spearman", "pearson")
        }
        if output_path is not None:
            save_results(results, output_path)
        return results


def format_sts_table(results: Mapping[str, Mapping[str, float]], metric: str = "spearman") -> str:
    """A Markdown table of one metric ×100 per task, as the SimCSE paper prints it, ``avg`` last as "Avg."."""
    names = [name for name in results if name != "avg"] + (["avg"] if "avg" in results else [])
    headers = ["", *("Avg." if name == "avg" else name for name in names)]
    return markdown_table(headers, [[metric, *(f"{results[name][metric]:.2f}" for name in names)]])
