"""`agecam eval`: score a model on a dataset through the till's path (YuNet, edge crop, model).

Photos with no detected face fall back to the whole photo, as a till would see a badly framed face,
and are counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.vision.faces import CropSpec
from edge.vision.files import not_a_file
from edge.vision.model_contract import temper_probs
from train.assets import cache_root, detector_path
from train.assurance import assurance_metrics
from train.atomic import write_text_atomic
from train.calibration import calibration_report
from train.crops import FACE, UNREADABLE, CropCache, whole_photo
from train.datasets import BadRow, Dataset, Sample, load_dataset
from train.errors import DataError, TrainError
from train.intervals import Bootstrap
from train.metrics import age_metrics
from train.operating_point import eval_operating_points, p_under_challenge
from train.plots import plot_reliability
from train.result_files import (
    clear_eval_report,
    group_labels,
    group_metrics,
    output_folder,
    sample_plots,
    write_bad_rows,
    write_predictions,
)

# crops -> (age, age_std, age_probs or None)
Predict = Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Predictor:
    predict: Predict
    crop: CropSpec
    history: list[dict]
    age_min: int = 0
    temperature: float = 1.0  # the model's own (ONNX metadata agecam.age_temperature), applied to age_probs


def _checkpoint_predictor(path: Path) -> Predictor:
    import torch

    from train.checkpoint import crop_spec, load_deploy_model

    model, data = load_deploy_model(path)

    def predict(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        with torch.no_grad():
            out = model(torch.from_numpy(np.stack(crops)))
        return out[0].numpy(), out[1].numpy(), out[2].numpy() if len(out) > 2 else None

    return Predictor(predict, crop_spec(data), data.get("history", []), int(data["age_min"]))


def _onnx_predictor(path: Path) -> Predictor:
    from edge.vision.age_model import AgeModel

    model = AgeModel(path, ["CPUExecutionProvider"], max_batch=64)  # the edge's loader and contract check
    info = model.info
    return Predictor(model.predict_with_probs, info.crop, [], int(info.age_min), info.age_temperature)


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


@dataclass
class Scored:
    samples: list[Sample] = field(default_factory=list)
    faces: list[bool] = field(default_factory=list)
    outputs: list[tuple] = field(default_factory=list)  # per batch: (age, age_std, age_probs or None)

    def stacked(self, index: int) -> np.ndarray | None:
        parts = [out[index] for out in self.outputs]
        return None if any(part is None for part in parts) else np.concatenate(parts)


def _run(predict: Predict, ds: Dataset, samples: list[Sample], cache: CropCache, batch: int = 64) -> Scored:
    scored = Scored()
    for start in tqdm(range(0, len(samples), batch), desc=f"eval {ds.name}", unit="batch", leave=False):
        part, crops, found = _crops(ds, samples[start : start + batch], cache)
        if part:
            scored.outputs.append(predict(crops))
            scored.samples += part
            scored.faces += found
    if not scored.samples:
        raise DataError(f"{ds.root}: no readable photos to score: check the images")
    return scored


def evaluate(
    model: str,
    data: str,
    split: str | None = None,
    out: str | None = None,
    config_path: str | None = None,
    cache_dir: str | None = None,
    boot: Bootstrap | None = None,
) -> dict[str, object]:
    """Metrics (see train.metrics.age_metrics) plus no_face, groups, the interval figures
    (train.assurance), calibration of age_probs (train.calibration), the risks that catch 95 % and 98 % of
    the minors with the 30+ share they cost (train.operating_point) and the report folder."""
    boot = boot or Bootstrap()
    path = Path(model)
    if problem := not_a_file(path):
        raise TrainError(f"model {path} {problem}: give a runs/NAME/best.pt or an exported .onnx file")
    predictor = _onnx_predictor(path) if path.suffix == ".onnx" else _checkpoint_predictor(path)
    ds = load_dataset(data)
    split, samples = _choose_split(ds, split)
    # Under the current folder, never beside the model: evaluating the bundled model must not write into models/.
    # Created before the scoring, so an unwritable --out fails in a second, not after every photo is scored.
    report_dir = output_folder(Path(out) if out else Path("runs") / f"eval-{path.stem}-{ds.name}-{split}")
    cache = CropCache(cache_root(cache_dir), detector_path(config_path), predictor.crop)
    scored = _run(predictor.predict, ds, samples, cache)
    kept, pred, std, probs = scored.samples, scored.stacked(0), scored.stacked(1), scored.stacked(2)
    true = np.array([s.age for s in kept], dtype=np.float64)
    spec = predictor.crop
    report = {
        **age_metrics(true, pred),
        "no_face": scored.faces.count(False),
        "bad_rows": len(ds.bad_rows),
        **group_metrics(kept, pred),
        **assurance_metrics(true, pred, group_labels(kept), boot),
        "model": str(path),
        "data": str(ds.root),
        "split": split,
        "crop": {"size": spec.size, "margin": spec.margin},
        "report": str(report_dir),
    }
    clear_eval_report(report_dir)
    report["plots"] = [str(p) for p in sample_plots(report_dir, kept, pred, predictor.history)]
    if probs is not None:  # T is only ever fitted on valid: never tune on a test split
        calibration = calibration_report(probs, true, predictor.age_min, predictor.temperature, split == "valid")
        report["calibration"] = calibration
        report["plots"].append(str(plot_reliability(probs, true, calibration, report_dir / "reliability.png")))
        p_under = p_under_challenge(temper_probs(probs, predictor.temperature), predictor.age_min)
        report["risk_operating_points"] = eval_operating_points(p_under, true, boot)
    write_predictions(report_dir / "predictions.csv", kept, pred, std, scored.faces)
    write_bad_rows(report_dir / "bad_rows.csv", ds.bad_rows)
    write_text_atomic(report_dir / "metrics.json", json.dumps(report, indent=2))  # last: the report is whole
    return report
