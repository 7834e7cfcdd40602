"""The fp32 ONNX graph of a checkpoint's till-facing model, with the contract's metadata."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import onnx
import torch

from edge.vision.model_contract import INPUT_NAME, OUTPUT_AGE, OUTPUT_PROBS, OUTPUT_STD, metadata_props
from export.provenance import code_version
from train.checkpoint import crop_spec

OPSET = 17


def model_metadata(data: dict, checkpoint: Path, precision: str, temperature: float | None = None) -> dict[str, str]:
    spec = crop_spec(data)
    config = data.get("config", {})
    training_data = [Path(folder).name for folder in config.get("data", [])]
    # Contract 1.1's optional key: only a distribution head has age_probs to calibrate.
    extra = {} if temperature is None else {"age_temperature": str(temperature)}
    return metadata_props(
        spec.size,
        spec.margin,
        int(data["age_min"]),
        int(data["age_max"]),
        backbone=data["backbone"],
        head=data["head"],
        precision=precision,
        training_data=json.dumps({"datasets": training_data, "split": "train", "selected_on": "valid"}),
        valid_metrics=data.get("valid_metrics", {}),
        checkpoint_sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        code_version=code_version(),
        **extra,
    )


def export_fp32(
    model: torch.nn.Module, data: dict, checkpoint: Path, out: Path, temperature: float | None = None
) -> None:
    """torch -> ONNX with a dynamic batch; the graph takes raw uint8 BGR crops (preprocessing inside)."""
    size = crop_spec(data).size
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    outputs = [OUTPUT_AGE, OUTPUT_STD] + ([OUTPUT_PROBS] if data["head"] == "dist" else [])
    axes = {name: {0: "N"} for name in [INPUT_NAME, *outputs]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load(str(out))
    onnx.helper.set_model_props(proto, model_metadata(data, checkpoint, "fp32", temperature))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def set_precision(path: Path, precision: str) -> None:
    """Record a variant's precision in its metadata (the rest is kept from the fp32 model)."""
    update_metadata(path, path, {"agecam.precision": precision})


def update_metadata(source: Path, target: Path, values: dict[str, str]) -> None:
    """Write `source` to `target` with these metadata entries set (the others kept)."""
    proto = onnx.load(str(source))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    props.update(values)
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(target))
