"""Exported ONNX age models compared photo by photo on `valid`: each model's MAE and Challenge 25 rates, the
calibration error of its P(age < 25) and P(age < 18), and for every model after the first the paired
difference (model - first) with a percentile bootstrap interval over photos. Where every model has age_probs,
also the share of photos aged 30+ whose P(age < 25) reaches the risk that catches 95 % and 98 % of the minors
(train/operating_point.py): the models compared at the same minor recall. For a candidate against the
bundled model, say, or an ensemble against its members. The models must share their crop (size and margin);
crops come from train/crops.py's cache. Needs the [train] extra; never reads a test split.

    python benchmarks/compare_models.py BASE.onnx OTHER.onnx... --data DATASET... [--resamples 1000] > cmp.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge.vision.age_model import AgeModel
from edge.vision.model_contract import temper_probs
from train.assurance import paired_differences
from train.calibration import ece_by_threshold
from train.intervals import Bootstrap
from train.metrics import age_metrics
from train.operating_point import operating_points, p_under_challenge
from train.splits import valid_faces


def model_figures(
    model: AgeModel, crops: list[np.ndarray], true: np.ndarray
) -> tuple[dict[str, object], np.ndarray, np.ndarray | None]:
    """(figures, estimates, P(age < 25) or None): age_metrics, plus the ECE of the tempered age_probs and the
    probability the policy's risk mode reads where the model has them."""
    ages, _, probs = model.predict_with_probs(crops)
    figures: dict[str, object] = dict(age_metrics(true, ages.astype(np.float64)))
    if probs is None:
        return figures, ages.astype(np.float64), None
    tempered = temper_probs(probs, model.info.age_temperature)
    figures["ece"] = ece_by_threshold(tempered, true, int(model.info.age_min))
    return figures, ages.astype(np.float64), p_under_challenge(tempered, model.info.age_min)


def dataset_report(models: dict[str, AgeModel], folder: str, cache_dir: str | None, boot: Bootstrap) -> dict:
    faces = valid_faces(folder, next(iter(models.values())).info.crop, cache_dir)
    crops, true = faces.crops, faces.ages
    report: dict[str, object] = {"photos": faces.photos, "faces": len(crops)}
    estimates, p_under = {}, {}
    for name, model in models.items():
        report[name], estimates[name], p_under[name] = model_figures(model, crops, true)
    base = next(iter(estimates))
    for name in list(estimates)[1:]:
        report[f"{name} - {base}"] = paired_differences(true, estimates[base], estimates[name], boot)
    if all(p is not None for p in p_under.values()):
        report["30+ reached at the risk that catches a share of minors"] = operating_points(p_under, true, boot)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the first is the base the others are compared with")
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", help="crop cache (default $AGECAM_CACHE, else ~/.cache/agecam/crops)")
    args = parser.parse_args()
    models = {Path(path).name: AgeModel(Path(path), ["CPUExecutionProvider"]) for path in args.models}
    crops = {model.info.crop for model in models.values()}
    if len(crops) != 1:
        raise SystemExit(f"the models cut different crops ({sorted(map(str, crops))}): compare models of one crop")
    boot = Bootstrap(args.resamples, args.seed)
    report: dict[str, object] = {"split": "valid", "bootstrap": boot.describe()}
    for folder in args.data:
        report[folder] = dataset_report(models, folder, args.cache_dir, boot)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
