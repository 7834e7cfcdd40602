"""Percentile bootstrap intervals for means (MAE is the mean absolute error, a rate the mean of a 0/1 outcome)
and, through `index_draws`, for any statistic of the rows.

Each estimate resamples its own rows (a subgroup's rate resamples that subgroup) from a generator seeded
afresh, so a figure does not depend on which other figures were computed before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

CHUNK = 100  # resamples drawn at once: bounds memory at CHUNK x n indices


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = 1000
    seed: int = 0
    level: float = 0.95

    def describe(self) -> dict[str, object]:
        return {"method": "percentile bootstrap", "resamples": self.resamples, "seed": self.seed, "level": self.level}

    def interval(self, values: np.ndarray) -> list[float] | None:
        """The central `level` interval of the mean of `values` over resamples with replacement; None if empty."""
        values = np.asarray(values, np.float64)
        if values.size == 0:
            return None
        rng = np.random.default_rng(self.seed)
        means = np.empty(self.resamples)
        for start in range(0, self.resamples, CHUNK):
            count = min(CHUNK, self.resamples - start)
            means[start : start + count] = values[rng.integers(0, values.size, (count, values.size))].mean(axis=1)
        return self.percentiles(means)

    def index_draws(self, rows: int) -> Iterator[np.ndarray]:
        """Each resample's row indices (`rows` drawn with replacement), from a generator seeded afresh: for a
        statistic that is not a mean, computed on every draw and summarised by `percentiles`."""
        rng = np.random.default_rng(self.seed)
        for _ in range(self.resamples):
            yield rng.integers(0, rows, rows)

    def percentiles(self, statistics: Sequence[float] | np.ndarray) -> list[float]:
        """The central `level` interval of a statistic's values over the resamples (NaN values, where a
        resample could not give the statistic, left out)."""
        tail = (1 - self.level) / 2 * 100
        low, high = np.nanpercentile(np.asarray(statistics, np.float64), [tail, 100 - tail])
        return [round(float(low), 4), round(float(high), 4)]

    def estimate(self, values: np.ndarray) -> dict[str, object]:
        """{n, value, ci95}: the mean of `values` with its interval (value and ci95 None when there are no rows)."""
        values = np.asarray(values, np.float64)
        value = round(float(values.mean()), 4) if values.size else None
        return {"n": int(values.size), "value": value, "ci95": self.interval(values)}
