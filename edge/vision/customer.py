"""One customer's age: quality-weighted samples from a track, combined into a robust estimate with an
interval, and a stop to sampling once the estimate is stable (a long stay costs no more inference).

P(real age < the policy threshold) fuses the samples' calibrated age distributions (the model's `age_probs`)
by their quality-weighted mean, the linear pool: on `valid` it calibrated as well as log-linear pooling
(docs/training.md), it needs one number per sample, and one over-confident frame cannot veto the rest, as
it can in a product. A model without `age_probs` falls back to the mixture of normals from `age_std`."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from edge.config import CustomerConfig


@dataclass(frozen=True)
class AgeEstimate:
    """A customer's age: the weighted median, the interval, how many samples, and P(real age < the policy
    threshold) from the samples (None where it was not computed: an estimate from an older log)."""

    age: float
    low: float
    high: float
    samples: int
    p_under: float | None = None

    def probability_under(self, age: float, coverage: float = 0.8) -> float:
        """P(real age < age): `p_under` when it is for that age's threshold, else a normal read off the
        interval (its central `coverage`), for estimates restored from the log."""
        if self.p_under is not None:
            return self.p_under
        spread = max((self.high - self.low) / (2 * NORMAL_Z[coverage]), 0.5)
        return 0.5 * (1 + math.erf((age - self.age) / (spread * math.sqrt(2))))


NORMAL_Z = {0.8: 1.2816, 0.9: 1.6449, 0.95: 1.9600}  # central coverage -> z of its upper end


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def mixture_cdf(x: float, means: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> float:
    """P(value < x) under the weighted mixture of normals."""
    z = (x - means) / (stds * math.sqrt(2))
    return float(np.dot(weights, [0.5 * (1 + math.erf(v)) for v in z])) / float(weights.sum())


def mixture_quantile(q: float, means: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> float:
    """The q-quantile of a weighted mixture of normals (each sample with its model uncertainty)."""

    def cdf(x: float) -> float:
        return mixture_cdf(x, means, stds, weights)

    low, high = float((means - 6 * stds).min()), float((means + 6 * stds).max())
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < q else (low, middle)
    return (low + high) / 2


class CustomerAge:
    """Collects (age, std, weight) samples for one track; see CustomerConfig for the knobs. `risk_age`:
    the policy threshold, for P(real age < it) in each estimate."""

    def __init__(self, config: CustomerConfig, risk_age: float | None = None) -> None:
        self.config, self.risk_age = config, risk_age
        self.ages: list[float] = []
        self.stds: list[float] = []
        self.weights: list[float] = []
        self.p_unders: list[float | None] = []  # each sample's P(age < risk_age) from its age_probs
        self.recent = deque(maxlen=config.stable_window)
        self.estimate: AgeEstimate | None = None
        self.last_sample_t: float | None = None

    @property
    def stable(self) -> bool:
        """Enough good samples and the last few estimates agree: more samples would not change it.
        The weight condition keeps a run of tiny far-away faces from freezing the estimate early."""
        window, config = self.recent, self.config
        return len(self.ages) >= config.max_samples or (
            len(self.ages) >= config.min_samples
            and sum(self.weights) >= config.stable_min_weight
            and len(window) == window.maxlen
            and max(window) - min(window) <= config.stable_tolerance_years
        )

    def wants_sample(self, now: float) -> bool:
        """Not stable yet, and sample_interval_s has passed since the last accepted sample."""
        spaced = self.last_sample_t is None or now - self.last_sample_t >= self.config.sample_interval_s
        return spaced and not self.stable

    def add(self, age: float, std: float, quality: float, now: float, p_under: float | None = None) -> bool:
        """Add one sample taken at `now` (seconds), with its P(age < risk_age) from age_probs if the model
        has them. Returns False (and ignores it) when the face quality is below the minimum, or zero (a
        sample without weight: min_quality 0 let an all-zero customer divide by zero), so the next frame
        may try again."""
        if quality < self.config.min_quality or quality <= 0 or not (math.isfinite(age) and math.isfinite(std)):
            return False  # a NaN std would make the interval NaN, which the log cannot store
        self.last_sample_t = now
        self.ages.append(age)
        self.stds.append(max(std, 0.5))
        self.weights.append(quality)
        self.p_unders.append(p_under if p_under is not None and 0 <= p_under <= 1 else None)
        self.estimate = self._combine()
        self.recent.append(self.estimate.age)
        return True

    def _combine(self) -> AgeEstimate:
        ages, stds, weights = (np.asarray(v, np.float64) for v in (self.ages, self.stds, self.weights))
        tail = (1 - self.config.interval_coverage) / 2
        return AgeEstimate(
            age=weighted_median(ages, weights),
            low=mixture_quantile(tail, ages, stds, weights),
            high=mixture_quantile(1 - tail, ages, stds, weights),
            samples=len(ages),
            p_under=self._p_under(ages, stds, weights),
        )

    def _p_under(self, ages: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> float | None:
        """The linear pool of the samples' P(age < risk_age); the normal mixture if any sample lacks one."""
        if self.risk_age is None:
            return None
        if all(p is not None for p in self.p_unders):
            return float(np.dot(weights, np.asarray(self.p_unders, np.float64)) / weights.sum())
        return mixture_cdf(self.risk_age, ages, stds, weights)
