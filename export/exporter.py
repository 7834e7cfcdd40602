"""Checkpoint -> checked ONNX model: export, variant, parity against torch on real crops, then an atomic move.

Nothing is written at the output path until every check has passed, so a failed export leaves no
half-written model behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from edge.errors import AgecamError
from edge.vision.age_model import AgeModel
from export.errors import ExportError
from export.onnx_graph import export_fp32, set_precision
from export.temperature import export_temperature
from export.variants import to_fp16, to_int8
from train.assets import cache_root, detector_path
from train.checkpoint import crop_spec, load_deploy_model
from train.crops import FACE, CropCache
from train.datasets import load_dataset

PRECISIONS = ("fp32", "fp16", "int8")
# Largest allowed |age difference| against the torch model, in years, on every parity crop.
# int8 rounding is noise per image, largest on faces the model is unsure of (a flat age distribution), so
# its real gate is the mean below and its max only catches a broken graph: on APPA-REAL valid (1,490
# crops) the int8 recipe's worst crop is 9.4 years (5.8-10.1 with other calibration subsets).
PARITY_MAX_ABS = {"fp32": 0.05, "fp16": 0.5, "int8": 15.0}
# Largest allowed mean |age difference| over the parity crops (fp32, fp16: no stricter than their max).
# int8: 0.53 on the default 64 parity crops, 0.62 on all 1,490 valid crops, at most 1.04 over 5,000
# random draws of 64; the recipes it replaced (only Conv/Gemm quantized, or min/max activation ranges)
# measured 1.5-3.1.
PARITY_MEAN_ABS = {"fp32": 0.05, "fp16": 0.5, "int8": 1.2}


def dataset_folders(data: dict, data_dirs: list[str] | None) -> list[str]:
    """The given dataset folders, else the checkpoint's training data; at least one must exist."""
    folders = data_dirs or data.get("config", {}).get("data", [])
    folders = [folder for folder in folders if Path(folder).is_dir()]
    if not folders:
        raise ExportError(
            "no dataset folder for the parity check and calibration: pass --data DIR "
            "(a folder with labels.csv and images/)"
        )
    return folders


def valid_crops(data: dict, data_dirs: list[str] | None, limit: int) -> list[np.ndarray]:
    """Real till crops (edge detector + edge crop) of `valid` photos, from the given or the training datasets."""
    folders = dataset_folders(data, data_dirs)
    cache = CropCache(cache_root(data.get("config", {}).get("cache_dir")), detector_path(None), crop_spec(data))
    per_folder = -(-limit // len(folders))
    crops: list[np.ndarray] = []
    for folder in folders:  # an equal share from each dataset, so calibration sees all of them
        dataset = load_dataset(folder)
        samples = dataset.tuning_rows()
        taken = 0
        for sample in samples[: per_folder * 2]:
            status, crop = cache.get(dataset.key, sample)
            if status == FACE and taken < per_folder and len(crops) < limit:
                crops.append(crop)
                taken += 1
    return crops


def torch_ages(model: torch.nn.Module, crops: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [model(torch.from_numpy(np.stack(crops[i : i + 32])))[0].numpy() for i in range(0, len(crops), 32)]
        )


def parity(onnx_path: Path, reference: np.ndarray, crops: list[np.ndarray], precision: str) -> dict[str, float]:
    """Run the file through the edge's own loader (contract check included) and compare with torch."""
    try:
        ages, _ = AgeModel(onnx_path, ["CPUExecutionProvider"], max_batch=32).predict(crops)
    except AgecamError as error:
        raise ExportError(f"the exported {precision} model fails the edge's checks: {error}") from None
    diff = np.abs(ages - reference)
    result = {"n": len(crops), "max_abs_age_diff": float(diff.max()), "mean_abs_age_diff": float(diff.mean())}
    if result["max_abs_age_diff"] > PARITY_MAX_ABS[precision]:
        raise ExportError(
            f"{precision} parity check failed: ONNX and torch ages differ by up to "
            f"{result['max_abs_age_diff']:.3f} years (limit {PARITY_MAX_ABS[precision]})"
        )
    if result["mean_abs_age_diff"] > PARITY_MEAN_ABS[precision]:
        raise ExportError(
            f"{precision} parity check failed: ONNX and torch ages differ by "
            f"{result['mean_abs_age_diff']:.3f} years on average (limit {PARITY_MEAN_ABS[precision]})"
        )
    return result


def _check_output(out: Path) -> None:
    if out.suffix != ".onnx":
        raise ExportError(f"{out}: name the output MODEL.onnx")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise ExportError(f"cannot write {out}: its folder {out.parent} is missing or not writable")
    if out.is_dir():  # found here, not by the rename after the whole export and its checks
        raise ExportError(f"cannot write {out}: it is a folder: name a MODEL.onnx file beside it")


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    precision: str = "fp32",
    data_dirs: list[str] | None = None,
    parity_crops: int = 64,
    calibration_crops: int = 256,
    temperature_crops: int = 512,
) -> dict[str, object]:
    _check_output(out)
    model, data = load_deploy_model(checkpoint)
    temperature = export_temperature(model, data, dataset_folders(data, data_dirs), temperature_crops)
    crops = valid_crops(data, data_dirs, max(parity_crops, calibration_crops if precision == "int8" else 0))
    if len(crops) < 8:
        raise ExportError(f"only {len(crops)} valid crops with a detected face: pass --data with more photos")
    check, calibration = crops[:parity_crops], crops[:calibration_crops]
    reference = torch_ages(model, check)
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".agecam-export-") as folder:
            fp32 = Path(folder) / "fp32.onnx"
            export_fp32(model, data, checkpoint, fp32, temperature["value"] if temperature else None)
            report: dict[str, object] = {"fp32_parity": parity(fp32, reference, check, "fp32")}
            final = fp32
            if precision != "fp32":
                final = Path(folder) / f"{precision}.onnx"
                to_int8(fp32, final, calibration) if precision == "int8" else to_fp16(fp32, final)
                set_precision(final, precision)
                report[f"{precision}_parity"] = parity(final, reference, check, precision)
            os.replace(final, out)
    except OSError as error:  # a folder that passed _check_output yet cannot take the file (a full disk)
        raise ExportError(f"cannot write {out} ({error.strerror}): nothing was written") from None
    return {
        "out": str(out),
        "precision": precision,
        "bytes": out.stat().st_size,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "age_temperature": temperature,
        **report,
    }
