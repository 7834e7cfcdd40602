"""Which single age an exported model should report from its `age_probs`, measured photo by photo on `valid`:
the file's own `age` (the distribution's mean), the median of the distribution as the till tempers it (the
point that minimises the expected absolute error if the distribution is calibrated), and the mean after
dividing out the training ages' prior at a few strengths (prior^-s per 5-year bin, as `balance: s` samples
in training; a correction for rare ages). Each alternative is compared with the file's `age` by a paired
bootstrap (MAE and the Challenge 25 rates), with the mean signed error overall and for children under 13.
Needs the [train] extra; reads the train split's labels for the prior and never a test split.

    python benchmarks/point_estimates.py MODEL.onnx... --data DATASET... [--prior-data DATASET...] \
        [--strengths 0.25 0.5 1] [--resamples 1000] > estimates.json

--prior-data names the datasets the model was trained on (default: --data); for a model trained with one
dataset held out, name the others, so the held-out valid set is scored the way an unseen set would be.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge.vision.age_model import AgeModel
from edge.vision.model_contract import temper_probs
from train.assurance import paired_differences
from train.datasets import load_dataset
from train.intervals import Bootstrap
from train.metrics import age_metrics
from train.splits import valid_faces

BIN_YEARS = 5


def interpolated_median(probs: np.ndarray, age_min: float) -> np.ndarray:
    """The median of each row, each whole age's mass spread evenly over [age - 0.5, age + 0.5)."""
    cdf = np.cumsum(probs, axis=1)
    index = np.minimum((cdf < 0.5).sum(axis=1), probs.shape[1] - 1)
    rows = np.arange(len(probs))
    below = np.where(index > 0, cdf[rows, np.maximum(index - 1, 0)], 0.0)
    return age_min + index - 0.5 + (0.5 - below) / np.maximum(probs[rows, index], 1e-12)


def prior_weights(train_ages: np.ndarray, width: int, age_min: float, strength: float) -> np.ndarray:
    """prior^-strength per age of the model's range, the prior being the photos in each 5-year bin."""
    ages = age_min + np.arange(width)
    counts = np.bincount((train_ages // BIN_YEARS).astype(int), minlength=int(ages.max()) // BIN_YEARS + 1)
    return np.maximum(counts[(ages // BIN_YEARS).astype(int)], 1.0) ** -strength


def figures(true: np.ndarray, estimate: np.ndarray) -> dict[str, object]:
    signed = estimate - true
    children = signed[true < 13]
    bias = {"bias": float(signed.mean()), "bias_under_13": float(children.mean()) if children.size else None}
    return {**age_metrics(true, estimate), **bias}


def estimates(model: AgeModel, crops: list[np.ndarray], prior: np.ndarray, strengths: list[float]) -> dict:
    ages, _, probs = model.predict_with_probs(crops)
    if probs is None:
        raise SystemExit(f"{model.path}: the model has no age_probs output; export it again")
    age_min, width = float(model.info.age_min), probs.shape[1]
    tempered = temper_probs(probs.astype(np.float64), model.info.age_temperature)
    grid = age_min + np.arange(width)
    found = {"file age (mean)": ages.astype(np.float64), "median": interpolated_median(tempered, age_min)}
    for strength in strengths:
        corrected = probs * prior_weights(prior, width, age_min, strength)
        found[f"mean, prior^-{strength:g}"] = (corrected / corrected.sum(axis=1, keepdims=True)) @ grid
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", nargs="+", required=True, help="datasets whose valid photos are scored")
    parser.add_argument("--prior-data", nargs="+", help="datasets the model was trained on (default --data)")
    parser.add_argument("--strengths", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--cache-dir", help="crop cache (default $AGECAM_CACHE, else ~/.cache/agecam/crops)")
    args = parser.parse_args()
    prior = np.concatenate([[s.age for s in load_dataset(f).split("train")] for f in args.prior_data or args.data])
    boot, report = Bootstrap(args.resamples), {}
    for path in args.models:
        model = AgeModel(Path(path), ["CPUExecutionProvider"])
        for folder in args.data:
            faces = valid_faces(folder, model.info.crop, args.cache_dir)
            found = estimates(model, faces.crops, prior, args.strengths)
            base, true = found["file age (mean)"], faces.ages
            report[f"{Path(path).name} on {faces.dataset.name}"] = {
                name: {**figures(true, est), "minus file age": paired_differences(true, base, est, boot)}
                for name, est in found.items()
            }
    print(json.dumps({"split": "valid", "bootstrap": boot.describe(), **report}, indent=2))


if __name__ == "__main__":
    main()
