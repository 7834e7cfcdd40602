"""`agecam calibrate`: fit an exported model's temperature (`agecam.age_temperature`, model contract 1.1) on
`valid` crops through the till's own path (YuNet, the edge crop, the ONNX model as shipped, int8 included),
and write the model again with it. For a model whose checkpoint is gone, such as a bundled one, and to fit
the int8 file's own outputs rather than the fp32 network's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.vision.age_model import AgeModel
from edge.vision.model_contract import CONTRACT_VERSION, KEY_PREFIX, OUTPUT_PROBS, temper_probs
from export.checked_write import check_output_path, write_checked
from export.errors import ExportError
from export.onnx_graph import update_metadata
from export.temperature import spread_valid_crops
from train.calibration import ece_by_threshold, fit_temperature, nll
from train.datasets import load_dataset


def calibrate_model(
    model_path: Path, out: Path, folders: list[str], count: int = 1024, cache_dir: str | None = None
) -> dict[str, object]:
    """Fit T on `count` valid crops spread over the datasets and write `out` (atomically; it may be the input)."""
    check_output_path(out)
    model = AgeModel(model_path, ["CPUExecutionProvider"])
    if OUTPUT_PROBS not in model.info.outputs:
        raise ExportError(f"{model_path}: the model has no '{OUTPUT_PROBS}' output: there is nothing to calibrate")
    datasets = [load_dataset(folder) for folder in folders]
    for folder, dataset in zip(folders, datasets, strict=True):
        if not dataset.split("valid"):
            raise ExportError(f"{folder}: no valid split: calibrate on valid photos only (a split column)")
    crops, ages = spread_valid_crops(model.info.crop, cache_dir, datasets, count)
    if len(crops) < 32:
        raise ExportError(f"only {len(crops)} valid crops with a detected face: pass --data with more photos")
    probs, age_min = model.predict_with_probs(crops)[2].astype(np.float64), int(model.info.age_min)
    temperature, previous = fit_temperature(probs, ages, age_min), model.info.age_temperature
    version = _written_version(model.info.metadata["contract_version"])
    values = {f"{KEY_PREFIX}age_temperature": str(temperature), f"{KEY_PREFIX}contract_version": version}
    written = write_checked(out, lambda path: update_metadata(model_path, path, values), "calibrated model")
    return {
        "out": str(out),
        "sha256": written.sha256,
        "age_temperature": temperature,
        "previous_temperature": previous,
        "crops": len(crops),
        "nll": {
            "before": round(nll(probs, ages, age_min, previous), 4),
            "after": round(nll(probs, ages, age_min, temperature), 4),
        },
        "ece_on_fit_crops": {
            "before": ece_by_threshold(temper_probs(probs, previous), ages, age_min),
            "after": ece_by_threshold(temper_probs(probs, temperature), ages, age_min),
        },
    }


def _written_version(current: str) -> str:
    """This agecam's contract version (1.1 added the temperature), unless the model says a later 1.x already: a
    newer exporter's optional keys must keep the version that gives them their meaning."""

    def minor(version: str) -> int:  # the till read it: "1" or "1.N"
        return int(version.partition(".")[2] or 0)

    return current if minor(current) > minor(CONTRACT_VERSION) else CONTRACT_VERSION
