"""Reduced-precision variants of an fp32 model: fp16 for GPUs, int8 (static, QDQ) for CPUs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import convert_float_to_float16

from edge.model_contract import INPUT_NAME

# Only the backbone's convolutions and the head's linear layer are quantized: the in-graph preprocessing
# and the expected-age arithmetic (probabilities @ ages) stay in float, where int8 only loses accuracy.
QUANTIZED_OPS = ["Conv", "Gemm"]


class CropReader(CalibrationDataReader):
    """Feeds calibration crops (uint8 BGR NHWC) to the quantizer in small batches."""

    def __init__(self, crops: list[np.ndarray], batch: int = 16) -> None:
        self.batches = [np.stack(crops[i : i + batch]) for i in range(0, len(crops), batch)]
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {INPUT_NAME: self.batches[self.position - 1]}


def to_int8(fp32: Path, out: Path, calibration: list[np.ndarray]) -> None:
    """Static QDQ quantization calibrated on real crops, after ORT's recommended shape inference and fusion."""
    prepared = out.with_name(f"{out.stem}-prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        CropReader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=QUANTIZED_OPS,
    )
    prepared.unlink()


def to_fp16(fp32: Path, out: Path) -> None:
    """Float16 weights and activations; inputs and outputs keep their types (uint8 in, float32 out)."""
    proto = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    onnx.save(proto, str(out))
