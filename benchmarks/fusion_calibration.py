"""Which per-customer fusion of age distributions calibrates better, measured on `valid` photos with simulated
multi-sample customers: each photo's clean crop, its mirror image and augmented views (train/augment.py's
till-camera views) stand in for a customer's frames. Needs the [train] extra and cached or computable crops.

    python benchmarks/fusion_calibration.py MODEL.onnx DATASET... [--views 4] [--seed 0] > fusion.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge.vision.age_model import AgeModel
from edge.vision.model_contract import OUTPUT_PROBS
from train.assets import cache_root, detector_path
from train.augment import view
from train.crops import FACE, CropCache
from train.datasets import load_dataset
from train.fusion import fusion_report


def customer_views(crop: np.ndarray, count: int, seed: int, index: int) -> list[np.ndarray]:
    """The clean crop, its mirror, then augmented views (deterministic per seed and photo)."""
    return [crop, np.ascontiguousarray(crop[:, ::-1])] + [view(crop, seed, index, v) for v in range(1, count - 1)]


def dataset_views(model: AgeModel, folder: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, count, ages] distributions and true ages of the dataset's valid photos with a detected face."""
    dataset = load_dataset(folder)
    cache = CropCache(cache_root(None), detector_path(None), model.info.crop)
    probs, ages = [], []
    for index, sample in enumerate(dataset.split("valid")):
        status, crop = cache.get(dataset.key, sample)
        if status != FACE:
            continue
        probs.append(model.predict_with_probs(customer_views(crop, count, seed, index))[2])
        ages.append(sample.age)
    return np.stack(probs), np.array(ages, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--views", type=int, default=4, help="samples per simulated customer (>= 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = AgeModel(Path(args.model), ["CPUExecutionProvider"])
    if OUTPUT_PROBS not in model.info.outputs:
        parser.error(f"{args.model} has no {OUTPUT_PROBS} output")
    report = {"model": args.model, "views": args.views, "seed": args.seed}
    for folder in args.data:
        views, true = dataset_views(model, folder, args.views, args.seed)
        report[folder] = {"n": len(true), **fusion_report(views, true, int(model.info.age_min))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
