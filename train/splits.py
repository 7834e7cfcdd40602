"""A run's data: every dataset's train photos pooled into one split, and each dataset's valid split kept apart."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge.vision.faces import CropSpec
from train.assets import cache_root, detector_path
from train.config import TrainConfig
from train.crops import CropCache
from train.datasets import Dataset, Sample, load_dataset
from train.errors import DataError


@dataclass
class Split:
    samples: list[Sample] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)
    trunk: torch.Tensor | None = None

    @property
    def ages(self) -> torch.Tensor:
        return torch.tensor([s.age for s in self.samples], dtype=torch.float32)


def _subset(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    if limit is None or len(samples) <= limit:
        return samples
    return random.Random(seed).sample(samples, limit)


def load_splits(cfg: TrainConfig, cache: CropCache) -> tuple[list[Dataset], Split, dict[str, Split]]:
    if not cfg.data:
        raise DataError("no training data: give one or more dataset folders with --data")
    datasets = [load_dataset(path, cfg.valid_fraction) for path in cfg.data]
    names = [ds.name for ds in datasets]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # valid metrics, select_on and holdout go by name: the two would be scored as one
        folders = [str(ds.root) for ds in datasets if ds.name == twice[0]]
        raise DataError(f"two datasets are named {twice[0]!r} ({', '.join(folders)}): rename one folder")
    unknown = sorted(set(cfg.holdout) - {ds.name for ds in datasets})
    if unknown:
        names = [ds.name for ds in datasets]
        raise DataError(f"holdout {unknown[0]!r} is not one of the datasets {names}: use a dataset folder's name")
    train, valid = Split(), {}
    for ds in datasets:
        for split_name in ("train", "valid"):
            if split_name == "train" and ds.name in cfg.holdout:
                continue
            samples = _subset(ds.split(split_name), cfg.max_per_split, cfg.seed)
            kept, crops = cache.crops_for(ds, samples, f"crops {ds.name}/{split_name}")
            target = train if split_name == "train" else valid.setdefault(ds.name, Split())
            target.samples += kept
            target.crops += crops
    if not train.samples:
        left = [str(ds.root) for ds in datasets if ds.name not in cfg.holdout] or ["(every dataset is held out)"]
        raise DataError(f"no training photos with a face in {', '.join(left)}: check the datasets and holdout")
    valid = {name: split for name, split in valid.items() if split.samples}
    if not valid:
        raise DataError(f"no valid photos with a face in {', '.join(cfg.data)}: a split column or more data")
    return datasets, train, valid


@dataclass(frozen=True)
class ValidFaces:
    """A dataset's valid photos with a detected face, cropped as the till crops them."""

    dataset: Dataset
    photos: int  # in the valid split, with a face or not
    crops: list[np.ndarray]
    ages: np.ndarray  # float64, one per crop


def valid_faces(folder: str | Path, crop: CropSpec, cache_dir: str | None = None) -> ValidFaces:
    """For the benchmarks that score models photo by photo on `valid`; DataError when there is no valid split."""
    dataset = load_dataset(folder)
    samples = dataset.split("valid")
    if not samples:
        raise DataError(f"{folder}: no valid split")
    cache = CropCache(cache_root(cache_dir), detector_path(None), crop)
    kept, crops = cache.crops_for(dataset, samples, f"crops {dataset.name}")
    return ValidFaces(dataset, len(samples), crops, np.array([sample.age for sample in kept], np.float64))
