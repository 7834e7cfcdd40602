"""Age metrics: MAE and the signed mean error overall and by age bin, and the Challenge 25 checks a till cares
about."""

from __future__ import annotations

import numpy as np

AGE_BINS = ((0, 12), (13, 17), (18, 24), (25, 34), (35, 44), (45, 59), (60, 200))


def bin_label(low: int, high: int) -> str:
    return f"{low}+" if high >= 200 else f"{low}-{high}"


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def _mean_by_bin(true: np.ndarray, values: np.ndarray) -> dict[str, float | None]:
    by_bin = {}
    for low, high in AGE_BINS:
        mask = (true >= low) & (true < high + 1)
        by_bin[bin_label(low, high)] = float(values[mask].mean()) if mask.any() else None
    return by_bin


def age_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, object]:
    """n, mae and mean_error (signed: positive where ages are estimated older than they are), each overall and by
    age bin, and the Challenge 25 recalls/false alarm (None where a group is empty)."""
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    signed = pred - true
    err = np.abs(signed)
    below25 = pred < 25
    return {
        "n": int(true.size),
        "mae": float(err.mean()) if true.size else None,
        "mae_by_age_bin": _mean_by_bin(true, err),
        "mean_error": float(signed.mean()) if true.size else None,
        "mean_error_by_age_bin": _mean_by_bin(true, signed),
        "c25_minor_recall": _share(below25[true < 18]),
        "c25_teen_recall": _share(below25[(true >= 13) & (true < 18)]),
        "c25_false_alarm": _share(below25[true >= 25]),
    }


def group_mae(true: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, float]]:
    """MAE and count per group label (e.g. gender or race); rows with no label (-1) are left out."""
    err = np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))
    out = {}
    for label in sorted(set(groups.tolist()) - {-1}):
        mask = groups == label
        out[str(label)] = {"n": int(mask.sum()), "mae": float(err[mask].mean())}
    return out
