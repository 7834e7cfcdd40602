"""Per-customer fusion of several age distributions (one per sample of the same face), and how well each
fusion is calibrated: the mean of the probabilities (linear pool) against log-linear pooling (the normalised
geometric mean) with a temperature. Temperatures are cross-fitted (train/calibration.py), so every figure is
measured on photos whose fit did not see them.
"""

from __future__ import annotations

import numpy as np

from edge.vision.model_contract import temper_probs
from train.calibration import THRESHOLDS, below, cross_fitted, ece, ece_by_threshold, nll
from train.intervals import Bootstrap


def linear_pool(views: np.ndarray) -> np.ndarray:
    """[N, K, A] distributions of K samples -> [N, A]: their mean."""
    return views.mean(axis=1)


def log_linear_pool(views: np.ndarray) -> np.ndarray:
    """[N, K, A] -> [N, A]: the normalised geometric mean. Tempering it with T is pooling with weights 1/(K T):
    T = 1/K treats the samples as independent (a product), T = 1 as one sample's worth of evidence."""
    logp = np.log(np.maximum(views, 1e-30)).mean(axis=1)
    return temper_probs(np.exp(logp - logp.max(axis=1, keepdims=True)), 1.0)


def _figures(probs: np.ndarray, true: np.ndarray, age_min: int) -> dict[str, object]:
    ages = age_min + np.arange(probs.shape[1])
    mae = float(np.abs(probs @ ages - true).mean())
    return {"ece": ece_by_threshold(probs, true, age_min), "nll": round(nll(probs, true, age_min), 4), "mae": mae}


def fusion_report(views: np.ndarray, true: np.ndarray, age_min: int) -> dict[str, dict]:
    """ECE of P(<25) and P(<18), NLL and MAE of each fusion, untempered and with a cross-fitted temperature."""
    report = {}
    candidates = {
        "single view": views[:, 0],
        "linear pool": linear_pool(views),
        "log-linear pool": log_linear_pool(views),
    }
    tempered = {}
    for name, fused in candidates.items():
        tempered[name], temperatures = cross_fitted(fused, true, age_min)
        report[name] = {"T=1": _figures(fused, true, age_min)}
        report[name]["cross-fitted T"] = {**_figures(tempered[name], true, age_min), "temperatures": temperatures}
    report["log-linear minus linear, cross-fitted T"] = paired_ece_difference(
        tempered["log-linear pool"], tempered["linear pool"], true, age_min, Bootstrap(resamples=500)
    )
    return report


def paired_ece_difference(
    first: np.ndarray, second: np.ndarray, true: np.ndarray, age_min: int, boot: Bootstrap
) -> dict[str, dict]:
    """ECE(first) - ECE(second) per threshold, with a paired bootstrap interval (the same photos resampled for
    both): an interval that spans 0 means the data cannot tell the two apart."""
    rng = np.random.default_rng(boot.seed)
    draws = [rng.integers(0, len(true), len(true)) for _ in range(boot.resamples)]
    out = {}
    for threshold in THRESHOLDS:
        outcome = (true < threshold).astype(float)
        a, b = below(first, age_min, threshold), below(second, age_min, threshold)
        diffs = [ece(a[i], outcome[i]) - ece(b[i], outcome[i]) for i in draws]
        tail = (1 - boot.level) / 2 * 100
        low, high = np.percentile(diffs, [tail, 100 - tail])
        value = ece(a, outcome) - ece(b, outcome)
        out[f"p_under_{threshold}"] = {"value": round(value, 4), "ci95": [round(float(low), 4), round(float(high), 4)]}
    return out
