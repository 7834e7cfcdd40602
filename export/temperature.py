"""The temperature an export writes (agecam.age_temperature, model contract 1.1): fitted on `valid` crops with
the checkpoint's own torch model, by the NLL of each photo's true age year (train/calibration.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edge.vision.faces import CropSpec
from train.assets import cache_root, detector_path
from train.calibration import fit_temperature, nll
from train.checkpoint import crop_spec
from train.crops import FACE, CropCache
from train.datasets import Dataset, load_dataset


def spread_valid_crops(
    spec: CropSpec, cache_dir: str | None, datasets: list[Dataset], limit: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Crops and true ages of `valid` photos spread evenly over each dataset's rows (an equal share from each):
    labels files may be sorted by age, and a fit on their first rows would see a few ages only."""
    cache = CropCache(cache_root(cache_dir), detector_path(None), spec)
    per_folder = -(-limit // len(datasets))
    crops, ages = [], []
    for dataset in datasets:
        samples = dataset.tuning_rows()
        for sample in samples[:: max(1, len(samples) // per_folder)][:per_folder]:
            status, crop = cache.get(dataset.key, sample)
            if status == FACE:
                crops.append(crop)
                ages.append(sample.age)
    return crops, np.array(ages, dtype=np.float64)


def torch_probs(model: torch.nn.Module, crops: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [model(torch.from_numpy(np.stack(crops[i : i + 32])))[2].numpy() for i in range(0, len(crops), 32)]
        )


def export_temperature(model: torch.nn.Module, data: dict, folders: list[Path | str], count: int) -> dict | None:
    """{value, crops, nll, nll_fitted} for a distribution head (None for the L1 head or count 0)."""
    if data["head"] != "dist" or count <= 0:
        return None
    cache_dir = data.get("config", {}).get("cache_dir")
    datasets = [load_dataset(folder) for folder in folders]
    crops, ages = spread_valid_crops(crop_spec(data), cache_dir, datasets, count)
    if len(crops) < 8:
        return None
    probs, age_min = torch_probs(model, crops), int(data["age_min"])
    temperature = fit_temperature(probs, ages, age_min)
    return {
        "value": temperature,
        "crops": len(crops),
        "nll": round(nll(probs, ages, age_min), 4),
        "nll_fitted": round(nll(probs, ages, age_min, temperature), 4),
    }
