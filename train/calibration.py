"""Calibration of the age distribution (`age_probs`): expected calibration error of P(age < 25) and
P(age < 18), their reliability bins, and temperature scaling fitted on `valid`.

Temperature T rescales the head's log-probabilities: p_T ∝ p^(1/T) (the same as softmax(logits / T)).
It is fitted by minimising the negative log-likelihood of each photo's true age year, with a golden-section
search over 1/T (the NLL is convex in it), so the fit is deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from edge.vision.model_contract import probability_below, temper_probs

THRESHOLDS = (25, 18)
BINS = 10
INVERSE_T_RANGE = (0.05, 20.0)  # 1/T searched: T from 0.05 to 20
SEARCH_STEPS = 80


below = probability_below  # P(age < threshold) per row, exactly as the till computes it


def reliability_bins(p: np.ndarray, outcome: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    """Equal-width bins of predicted probability: count, mean prediction, observed frequency (empty bins left out)."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append(
                {"n": int(mask.sum()), "predicted": float(p[mask].mean()), "observed": float(outcome[mask].mean())}
            )
    return rows


def ece(p: np.ndarray, outcome: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: the count-weighted mean |observed - predicted| over the bins."""
    rows = reliability_bins(p, outcome, bins)
    return float(sum(r["n"] * abs(r["observed"] - r["predicted"]) for r in rows) / max(len(p), 1))


def true_bins(true: np.ndarray, age_min: int, classes: int) -> np.ndarray:
    return np.clip(np.rint(true).astype(int) - age_min, 0, classes - 1)


def nll(probs: np.ndarray, true: np.ndarray, age_min: int, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true age year under the tempered distribution."""
    tempered = temper_probs(probs, temperature)
    picked = tempered[np.arange(len(true)), true_bins(true, age_min, probs.shape[1])]
    return float(-np.log(np.maximum(picked, 1e-30)).mean())


def fit_temperature(probs: np.ndarray, true: np.ndarray, age_min: int) -> float:
    """The temperature minimising the NLL of the true age years (golden-section search over 1/T)."""
    logp = np.log(np.maximum(np.asarray(probs, np.float64), 1e-30))
    picked = logp[np.arange(len(true)), true_bins(true, age_min, probs.shape[1])]

    def loss(inverse: float) -> float:
        z = inverse * logp
        top = z.max(axis=1)
        return float((top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - inverse * picked).mean())

    low, high = INVERSE_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(SEARCH_STEPS):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return round(1.0 / ((low + high) / 2), 4)


def ece_by_threshold(probs: np.ndarray, true: np.ndarray, age_min: int) -> dict[str, float]:
    return {f"p_under_{t}": round(ece(below(probs, age_min, t), (true < t).astype(float)), 4) for t in THRESHOLDS}


def cross_fitted(probs: np.ndarray, true: np.ndarray, age_min: int) -> tuple[np.ndarray, list[float]]:
    """Each half's probabilities tempered with the T fitted on the other half (rows alternate between halves),
    so the ECE after scaling is measured on photos the fit did not see."""
    halves = np.arange(len(true)) % 2
    out, temperatures = np.empty_like(probs), []
    for half in (0, 1):
        fit = halves != half
        temperature = fit_temperature(probs[fit], true[fit], age_min)
        out[~fit] = temper_probs(probs[~fit], temperature)
        temperatures.append(temperature)
    return out, temperatures


def calibration_report(
    probs: np.ndarray, true: np.ndarray, age_min: int, model_temperature: float, fit: bool
) -> dict[str, object]:
    """ECE as the model ships (its own temperature applied); with `fit` (valid only), T fitted here and ECE after."""
    shipped = temper_probs(probs, model_temperature)
    report: dict[str, object] = {
        "bins": BINS,
        "age_min": age_min,
        "model_temperature": model_temperature,
        "ece": ece_by_threshold(shipped, true, age_min),
        "nll": round(nll(shipped, true, age_min), 4),
    }
    if fit and len(true) >= 2:
        temperature = fit_temperature(probs, true, age_min)
        crossed, temperatures = cross_fitted(probs, true, age_min)
        report.update(
            fitted_temperature=temperature,
            ece_fitted=ece_by_threshold(temper_probs(probs, temperature), true, age_min),
            nll_fitted=round(nll(probs, true, age_min, temperature), 4),
            ece_cross_fitted=ece_by_threshold(crossed, true, age_min),
            cross_fitted_temperatures=temperatures,
        )
    return report
