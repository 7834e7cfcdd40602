"""Report plots (PNG): training curves, MAE by age, predicted against true, error by group."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs on headless machines
import matplotlib.pyplot as plt
import numpy as np

from edge.vision.model_contract import temper_probs
from train.assurance import GROUP_NAMES
from train.calibration import THRESHOLDS, below, ece, reliability_bins
from train.metrics import AGE_BINS, bin_label, group_mae

UTK_GENDER, UTK_RACE = GROUP_NAMES["gender"], GROUP_NAMES["race"]


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(history: list[dict], path: Path) -> Path:
    """Training loss and valid MAE per epoch, across both stages."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.arange(1, len(history) + 1)
    left.plot(steps, [h["train_loss"] for h in history], marker="o")
    left.set(title="training loss", xlabel="epoch (stage 1 then 2)", ylabel="loss")
    for name in history[0]["valid_mae"] if history else []:
        right.plot(steps, [h["valid_mae"][name] for h in history], marker="o", label=name)
    right.set(title="valid MAE", xlabel="epoch (stage 1 then 2)", ylabel="years")
    right.legend()
    for axis in (left, right):
        boundary = sum(1 for h in history if h["stage"] == 1)
        if 0 < boundary < len(history):
            axis.axvline(boundary + 0.5, color="grey", linestyle="--")
    return _save(fig, path)


def plot_mae_by_age(true: np.ndarray, pred: np.ndarray, path: Path) -> Path:
    err = np.abs(pred - true)
    labels, values, counts = [], [], []
    for low, high in AGE_BINS:
        mask = (true >= low) & (true < high + 1)
        labels.append(bin_label(low, high))
        values.append(err[mask].mean() if mask.any() else 0.0)
        counts.append(int(mask.sum()))
    fig, axis = plt.subplots(figsize=(7, 4))
    bars = axis.bar(labels, values)
    for bar, count in zip(bars, counts, strict=True):
        axis.annotate(
            f"n={count}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8
        )
    axis.set(title=f"MAE by age (overall {err.mean():.2f})", xlabel="real age", ylabel="MAE (years)")
    return _save(fig, path)


def plot_pred_vs_true(true: np.ndarray, pred: np.ndarray, path: Path) -> Path:
    fig, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(true, pred, s=4, alpha=0.4)
    top = max(float(true.max()), float(pred.max()), 1.0)
    axis.plot([0, top], [0, top], color="grey", linestyle="--")
    axis.axhline(25, color="red", linewidth=0.8)
    axis.axvline(18, color="red", linewidth=0.8)
    axis.set(title="predicted against true", xlabel="real age", ylabel="estimated age")
    return _save(fig, path)


def plot_by_group(true: np.ndarray, pred: np.ndarray, gender: np.ndarray, race: np.ndarray, path: Path) -> Path | None:
    """MAE by gender and by race, where those labels exist; None if neither does."""
    panels = [
        (title, names, group_mae(true, pred, labels))
        for title, names, labels in (("gender", UTK_GENDER, gender), ("race", UTK_RACE, race))
    ]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (title, names, stats) in zip(axes[0], panels, strict=True):
        axis.bar([names.get(k, k) for k in stats], [v["mae"] for v in stats.values()])
        axis.set(title=f"MAE by {title}", ylabel="MAE (years)")
    return _save(fig, path)


def plot_reliability(probs: np.ndarray, true: np.ndarray, calibration: dict, path: Path) -> Path:
    """Reliability diagrams of P(age < 25) and P(age < 18): observed share against mean prediction per bin
    (marker area ~ photos), as the model ships and with the temperature fitted on this split."""
    age_min = int(calibration.get("age_min", 0))
    shipped, fitted = calibration["model_temperature"], calibration.get("fitted_temperature")
    variants = [(f"as shipped (T={shipped:g})", shipped, "o")]
    if fitted is not None:
        variants.append((f"T={fitted:g} fitted here", fitted, "s"))
    fig, axes = plt.subplots(1, len(THRESHOLDS), figsize=(5 * len(THRESHOLDS), 4.6))
    for axis, threshold in zip(axes, THRESHOLDS, strict=True):
        outcome = (true < threshold).astype(float)
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
        for label, temperature, marker in variants:
            p = below(temper_probs(probs, temperature), age_min, threshold)
            rows = reliability_bins(p, outcome, calibration["bins"])
            x, y = [r["predicted"] for r in rows], [r["observed"] for r in rows]
            sizes = [12 + 200 * r["n"] / len(p) for r in rows]
            axis.plot(x, y, linewidth=1)
            axis.scatter(x, y, s=sizes, marker=marker, label=f"{label}: ECE {ece(p, outcome, calibration['bins']):.3f}")
        axis.set(title=f"P(age < {threshold})", xlabel="predicted probability", ylabel="observed share", xlim=(0, 1))
        axis.set_ylim(0, 1)
        axis.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def write_plots(
    out: Path, true: np.ndarray, pred: np.ndarray, gender: np.ndarray, race: np.ndarray, history: list[dict] | None
) -> list[Path]:
    """All report plots that apply; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = [
        plot_mae_by_age(true, pred, out / "mae_by_age.png"),
        plot_pred_vs_true(true, pred, out / "pred_vs_true.png"),
    ]
    group = plot_by_group(true, pred, gender, race, out / "mae_by_group.png")
    if group:
        files.append(group)
    if history:
        files.append(plot_curves(history, out / "curves.png"))
    return files
