"""Reduced-precision variants of an fp32 model: fp16 for GPUs, int8 (static, QDQ) for CPUs."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import convert_float_to_float16

from edge.vision.model_contract import INPUT_NAME

# Activation ranges: the 99.99th percentile of |x| on the calibration crops. Plain min/max lets a few rare
# outlier activations set the scale (mean |age diff| vs fp32 on APPA-REAL valid 1.25 years, against 0.6).
CALIBRATION = {"CalibPercentile": 99.99, "CalibStridedMinMax": 1}  # strided: one batch in memory, not all


class CropReader(CalibrationDataReader):
    """Feeds calibration crops (uint8 BGR NHWC) to the quantizer in small batches; `set_range` lets
    the calibrator take them a batch at a time (strided calibration)."""

    def __init__(self, crops: list[np.ndarray], batch: int = 16) -> None:
        self.batches = [np.stack(crops[i : i + batch]) for i in range(0, len(crops), batch)]
        self.position, self.end = 0, len(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.position, self.end = start_index, min(end_index, len(self.batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.end:
            return None
        self.position += 1
        return {INPUT_NAME: self.batches[self.position - 1]}


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes left in float: everything up to the second convolution, and everything after the last Gemm.

    Every other op (Conv, the ReLU6 Clips, residual Adds, pooling, the head's Gemm) is quantized, so ORT
    runs one chain of QLinearConv/QLinearAdd with no float round trips in between; quantizing only
    Conv/Gemm left a DequantizeLinear/QuantizeLinear pair at every Clip and Add and was slower than fp32.
    The front stays float because (measured on APPA-REAL valid) the first depthwise convolution's int8
    weights alone cost 0.7 years per image, and because a quantized first conv made ORT run the in-graph
    normalisation in NHWC with a slow 3-channel broadcast (2.3 of 7 ms per face). The head after the Gemm
    (softmax, expected age, std) is a few hundred values of arithmetic, where int8 only loses accuracy.
    """
    nodes = list(model.graph.node)
    convs = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    gemms = [i for i, node in enumerate(nodes) if node.op_type == "Gemm"]
    front = nodes[: convs[1] + 1] if len(convs) > 1 else []
    back = nodes[gemms[-1] + 1 :] if gemms else []
    return [node.name for node in front + back]


def to_int8(fp32: Path, out: Path, calibration: list[np.ndarray]) -> None:
    """Static QDQ quantization calibrated on real crops, after ORT's recommended shape inference and fusion:
    per-channel int8 weights, uint8 activations, QDQ (ORT fuses it into QLinear ops; QOperator measured the same)."""
    prepared = out.with_name(f"{out.stem}-prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))
    with contextlib.redirect_stdout(io.StringIO()):  # ORT's calibrator prints progress onto our JSON report
        _quantize(prepared, out, calibration)
    prepared.unlink()


def _quantize(prepared: Path, out: Path, calibration: list[np.ndarray]) -> None:
    quantize_static(
        str(prepared),
        str(out),
        CropReader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=float_nodes(onnx.load(str(prepared))),
        calibrate_method=CalibrationMethod.Percentile,
        extra_options=CALIBRATION,
    )


def to_fp16(fp32: Path, out: Path) -> None:
    """Float16 weights and activations; inputs and outputs keep their types (uint8 in, float32 out)."""
    proto = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    onnx.save(proto, str(out))
