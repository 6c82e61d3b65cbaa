"""What :func:`contrasent.search.mining.mine_hard_negatives` found: score summaries and the rows that
were filled from beyond the range or left short of negatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MiningStats:
    """What :func:`~contrasent.search.mining.mine_hard_negatives` found (also printed).

    ``positive_scores`` / ``negative_scores``: count, mean, min, median and max of the rows' positive
    scores and of all mined negatives' scores. ``rows_filled``: rows that took negatives from ranks
    ≥ max_rank. ``rows_short``: rows left with fewer than k negatives (``None`` columns).
    """

    rows: int
    num_negatives: int
    positive_scores: dict[str, float]
    negative_scores: dict[str, float]
    rows_filled: int
    rows_short: int
    negatives_missing: int

    @classmethod
    def collect(
        cls, negatives: list[list[str | None]], positive_scores: np.ndarray, negative_scores: list[float],
        rows_filled: int, num_negatives: int,
    ) -> MiningStats:
        """The statistics of mined ``negatives``: per row, k texts or ``None``; the rows' positive
        scores; the scores of all mined negatives; the rows filled from beyond max_rank."""
        return cls(
            rows=len(negatives),
            num_negatives=num_negatives,
            positive_scores=_summary(positive_scores),
            negative_scores=_summary(np.asarray(negative_scores)),
            rows_filled=rows_filled,
            rows_short=sum(None in row for row in negatives),
            negatives_missing=sum(row.count(None) for row in negatives),
        )

    def __str__(self) -> str:
        def line(name: str, s: dict[str, float]) -> str:
            if not s["count"]:
                return f"  {name}: none"
            return (
                f"  {name}: count {int(s['count'])}, mean {s['mean']:.4f}, min {s['min']:.4f}, "
                f"median {s['median']:.4f}, max {s['max']:.4f}"
            )

        return "\n".join([
            f"Mined {self.num_negatives} hard negatives for {self.rows} rows",
            line("positive scores", self.positive_scores),
            line("negative scores", self.negative_scores),
            f"  rows filled from beyond max_rank: {self.rows_filled}",
            (
                f"  rows with fewer than {self.num_negatives} negatives (None columns): {self.rows_short} "
                f"({self.negatives_missing} negatives missing)"
            ),
        ])


def _summary(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"count": 0}
    return {
        "count": len(values), "mean": float(values.mean()), "min": float(values.min()),
        "median": float(np.median(values)), "max": float(values.max()),
    }

