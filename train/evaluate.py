"""`agecam eval`: score a model on a dataset through the till's path (YuNet, edge crop, model).

Photos with no detected face fall back to the whole photo, as a till would see a badly framed face,
and are counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.vision.faces import CropSpec
from train.assets import cache_root, detector_path
from train.crops import FACE, UNREADABLE, CropCache, whole_photo
from train.datasets import BadRow, Dataset, Sample, load_dataset
from train.errors import DataError, TrainError
from train.metrics import age_metrics
from train.result_files import group_metrics, sample_plots, write_bad_rows, write_predictions

Predict = Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]]


def _checkpoint_predictor(path: Path) -> tuple[Predict, CropSpec, list[dict]]:
    import torch

    from train.checkpoint import crop_spec, load_deploy_model

    model, data = load_deploy_model(path)

    def predict(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = model(torch.from_numpy(np.stack(crops)))
        return out[0].numpy(), out[1].numpy()

    return predict, crop_spec(data), data.get("history", [])


def _onnx_predictor(path: Path) -> tuple[Predict, CropSpec, list[dict]]:
    from edge.vision.age_model import AgeModel

    model = AgeModel(path, ["CPUExecutionProvider"], max_batch=64)
    return model.predict, model.info.crop, []


def _choose_split(ds: Dataset, split: str | None) -> tuple[str, list[Sample]]:
    if split is None:
        split = "valid" if ds.has_split and ds.split("valid") else "all"
    samples = ds.samples if split == "all" else ds.split(split)
    if not samples:
        found = sorted({s.split for s in ds.samples})
        raise DataError(f"{ds.root}: no rows in split {split!r} (found {', '.join(found)}): pass --split")
    return split, samples


def _crops(ds: Dataset, samples: list[Sample], cache: CropCache) -> tuple[list[Sample], list[np.ndarray], list[bool]]:
    kept, crops, faces = [], [], []
    for sample in samples:
        status, crop = cache.get(ds.key, sample)
        if status == UNREADABLE:
            ds.bad_rows.append(BadRow(ds.name, 0, sample.file_name, "image unreadable"))
            continue
        if status != FACE:
            crop = whole_photo(cv2.imread(str(sample.path), cv2.IMREAD_COLOR), cache.spec)
        kept.append(sample)
        crops.append(crop)
        faces.append(status == FACE)
    return kept, crops, faces


def _run(
    predict: Predict, ds: Dataset, samples: list[Sample], cache: CropCache, batch: int = 64
) -> tuple[list[Sample], np.ndarray, np.ndarray, list[bool]]:
    kept, ages, stds, faces = [], [], [], []
    for start in tqdm(range(0, len(samples), batch), desc=f"eval {ds.name}", unit="batch", leave=False):
        part, crops, found = _crops(ds, samples[start : start + batch], cache)
        if part:
            age, std = predict(crops)
            kept += part
            faces += found
            ages.append(age)
            stds.append(std)
    if not kept:
        raise DataError(f"{ds.root}: no readable photos to score: check the images")
    return kept, np.concatenate(ages), np.concatenate(stds), faces


def evaluate(
    model: str,
    data: str,
    split: str | None = None,
    out: str | None = None,
    config_path: str | None = None,
    cache_dir: str | None = None,
) -> dict[str, object]:
    """Metrics (see train.metrics.age_metrics) plus no_face, groups and the report folder."""
    path = Path(model)
    if not path.is_file():
        raise TrainError(f"model not found: {path}: give a runs/NAME/best.pt or an exported .onnx file")
    predict, spec, history = _onnx_predictor(path) if path.suffix == ".onnx" else _checkpoint_predictor(path)
    ds = load_dataset(data)
    split, samples = _choose_split(ds, split)
    cache = CropCache(cache_root(cache_dir), detector_path(config_path), spec)
    kept, pred, std, faces = _run(predict, ds, samples, cache)
    true = np.array([s.age for s in kept])
    # Under the current folder, never beside the model: evaluating the bundled model must not write into models/.
    report_dir = Path(out) if out else Path("runs") / f"eval-{path.stem}-{ds.name}-{split}"
    report = {
        **age_metrics(true, pred),
        "no_face": faces.count(False),
        "bad_rows": len(ds.bad_rows),
        **group_metrics(kept, pred),
        "model": str(path),
        "data": str(ds.root),
        "split": split,
        "crop": {"size": spec.size, "margin": spec.margin},
        "report": str(report_dir),
    }
    report["plots"] = [str(p) for p in sample_plots(report_dir, kept, pred, history)]
    write_predictions(report_dir / "predictions.csv", kept, pred, std, faces)
    write_bad_rows(report_dir / "bad_rows.csv", ds.bad_rows)
    (report_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
