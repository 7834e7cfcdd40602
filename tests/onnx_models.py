"""Small ONNX age models for tests, built with onnx.helper (no torch needed).

The 'brightness' model honours docs/model-contract.md: its age is a fixed function of the crop's mean
pixel value, so tests can compute what any crop must give, batched or alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge.vision.model_contract import metadata_props

AGE_PER_LEVEL = 0.25
AGE_OFFSET = 5.0
AGE_STD = 3.0


def expected_age(crop: np.ndarray) -> float:
    return float(crop.astype(np.float64).mean() * AGE_PER_LEVEL + AGE_OFFSET)


def brightness_model(
    size: int = 32,
    margin: float = 0.3,
    metadata: dict[str, str] | None = None,
    input_type: int = TensorProto.UINT8,
    batch: str | int = "N",
    outputs: tuple[str, str] = ("age", "age_std"),
) -> onnx.ModelProto:
    constant = {
        name: helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("scale", AGE_PER_LEVEL), ("offset", AGE_OFFSET), ("std", AGE_STD), ("zero", 0.0))
    }
    nodes = [
        helper.make_node("Cast", ["face"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["level"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["level", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], [outputs[0]]),
        helper.make_node("Mul", ["level", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "std"], [outputs[1]]),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness_age",
        [helper.make_tensor_value_info("face", input_type, [batch, size, size, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch]) for name in outputs],
        initializer=list(constant.values()),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    props = metadata if metadata is not None else metadata_props(size, margin, 0, 100, backbone="brightness-test")
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path
