"""Horizontal-flip test-time augmentation for an exported ONNX age model, measured on `valid` photos: each face
crop (train/crops.py's cache, the model's own crop spec) is scored as is ("plain") and as the mean of its age
and its mirror image's age ("flip"). Reports MAE and the Challenge 25 rates of both, the paired difference
flip - plain with a percentile bootstrap interval over photos, and the model's CPU time per face on the
till's thread count. Needs the [train] extra and cached or computable crops; never reads a test split.

    python benchmarks/flip_tta.py MODEL.onnx DATASET... [--resamples 1000] [--seed 0] [--cache-dir DIR] > flip.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edge.vision.age_model import AgeModel, age_model_threads
from train.assurance import paired_differences
from train.intervals import Bootstrap
from train.metrics import age_metrics
from train.splits import valid_faces

TIMING_BATCH, TIMING_RUNS = 8, 30


def mirrored(crops: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]


def ms_per_face(model: AgeModel, crops: list[np.ndarray]) -> float:
    """Median milliseconds per face of model.predict on the same batch, after two warm-up runs."""
    model.predict(crops)
    model.predict(crops)
    runs = []
    for _ in range(TIMING_RUNS):
        start = time.perf_counter()
        model.predict(crops)
        runs.append(time.perf_counter() - start)
    return round(float(np.median(runs)) * 1000 / len(crops), 3)


def dataset_report(
    model: AgeModel, folder: str, cache_dir: str | None, boot: Bootstrap
) -> tuple[dict[str, object], list[np.ndarray]]:
    """The dataset's figures, and its face crops (for timing)."""
    faces = valid_faces(folder, model.info.crop, cache_dir)
    crops, true = faces.crops, faces.ages
    plain = model.predict(crops)[0].astype(np.float64)
    mirror = model.predict(mirrored(crops))[0].astype(np.float64)
    flip = (plain + mirror) / 2
    report = {
        "photos": faces.photos,
        "faces": len(crops),
        "mean_abs_plain_vs_mirror": round(float(np.abs(plain - mirror).mean()), 4),
        "plain": age_metrics(true, plain),
        "flip": age_metrics(true, flip),
        "flip_minus_plain": paired_differences(true, plain, flip, boot),
    }
    return report, crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data", nargs="+")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", help="crop cache (default $AGECAM_CACHE, else ~/.cache/agecam/crops)")
    args = parser.parse_args()
    threads = age_model_threads(0)  # the till's default: half the cores
    model = AgeModel(Path(args.model), ["CPUExecutionProvider"], threads)
    boot = Bootstrap(args.resamples, args.seed)
    report: dict[str, object] = {"model": args.model, "split": "valid", "bootstrap": boot.describe()}
    timing_crops: list[np.ndarray] = []
    for folder in args.data:
        report[folder], crops = dataset_report(model, folder, args.cache_dir, boot)
        timing_crops = timing_crops or crops[:TIMING_BATCH]
    plain_ms = ms_per_face(model, timing_crops)
    flip_ms = ms_per_face(model, timing_crops + mirrored(timing_crops)) * 2  # 2 runs per face, one batch
    report["timing"] = {
        "provider": model.provider,
        "threads": threads,
        "batch": TIMING_BATCH,
        "runs": TIMING_RUNS,
        "plain_ms_per_face": plain_ms,
        "flip_ms_per_face": round(flip_ms, 3),
        "flip_over_plain": round(flip_ms / plain_ms, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
