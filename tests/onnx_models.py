"""Small ONNX age models for tests, built with onnx.helper (no torch needed).

The 'brightness' model honours docs/model-contract.md: its age is a fixed function of the crop's mean
pixel value, so tests can compute what any crop must give, batched or alone. With `probs` it also outputs
age_probs: a normal of width AGE_STD around that age over the integer ages 0-100 (softmax of -z^2/2).
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
    probs: bool = False,
    probs_nan_above: float | None = None,  # age_probs NaN for crops whose age is above this (a fault)
    left_half: bool = False,  # the level of the crop's left half only: a model that is not mirror-symmetric
) -> onnx.ModelProto:
    constant = {
        name: helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("scale", AGE_PER_LEVEL), ("offset", AGE_OFFSET), ("std", AGE_STD), ("zero", 0.0))
    }
    nodes = [helper.make_node("Cast", ["face"], ["all_pixels"], to=TensorProto.FLOAT)]
    if left_half:
        for name, value in (("half_start", 0), ("half_end", size // 2), ("width_axis", 2)):
            constant[name] = helper.make_tensor(name, TensorProto.INT64, [1], [value])
        nodes.append(helper.make_node("Slice", ["all_pixels", "half_start", "half_end", "width_axis"], ["pixels"]))
    else:
        nodes.append(helper.make_node("Identity", ["all_pixels"], ["pixels"]))
    nodes += [
        helper.make_node("ReduceMean", ["pixels"], ["level"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["level", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], [outputs[0]]),
        helper.make_node("Mul", ["level", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "std"], [outputs[1]]),
    ]
    results = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch]) for name in outputs]
    if probs:
        nodes += _probs_nodes(outputs[0], constant, probs_nan_above)
        results.append(helper.make_tensor_value_info("age_probs", TensorProto.FLOAT, [batch, 101]))
    graph = helper.make_graph(
        nodes,
        "brightness_age",
        [helper.make_tensor_value_info("face", input_type, [batch, size, size, 3])],
        results,
        initializer=list(constant.values()),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    props = metadata if metadata is not None else metadata_props(size, margin, 0, 100, backbone="brightness-test")
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def _probs_nodes(age: str, constant: dict[str, onnx.TensorProto], nan_above: float | None) -> list[onnx.NodeProto]:
    """age_probs = softmax(-((ages - age) / AGE_STD)^2 / 2) over ages 0-100; NaN rows where age > nan_above."""
    extra = {
        "ages": ([1, 101], [float(a) for a in range(101)]),
        "axis1": ([1], [1]),
        "minus_half_var": ([], [-0.5 / AGE_STD**2]),
    }
    extra |= {"nan": ([], [float("nan")]), "nan_above": ([], [nan_above if nan_above is not None else 1e9])}
    for name, (dims, values) in extra.items():
        kind = TensorProto.INT64 if name == "axis1" else TensorProto.FLOAT
        constant[name] = helper.make_tensor(name, kind, dims, values)
    return [
        helper.make_node("Unsqueeze", [age, "axis1"], ["age_column"]),
        helper.make_node("Sub", ["ages", "age_column"], ["offsets"]),
        helper.make_node("Mul", ["offsets", "offsets"], ["squares"]),
        helper.make_node("Mul", ["squares", "minus_half_var"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["clean_probs"], axis=1),
        helper.make_node("Greater", ["age_column", "nan_above"], ["broken"]),
        helper.make_node("Where", ["broken", "nan", "clean_probs"], ["age_probs"]),
    ]


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


FAULTS = ("nan_std", "inf_std", "one_per_batch", "out_of_range", "nan_in_band")


def faulty_model(fault: str, band: tuple[float, float] = (95.0, 125.0), size: int = 32) -> onnx.ModelProto:
    """The brightness model with one fault that the contract check cannot see: NaN or infinite age_std,
    one value per batch instead of per crop, ages far outside its 0-100 metadata, or a NaN age_std only
    for crops whose mean level lies inside `band` (a model that goes wrong on some faces only)."""
    values = {"scale": AGE_PER_LEVEL, "offset": AGE_OFFSET, "std": AGE_STD, "zero": 0.0, "far": 500.0}
    values |= {"nan": float("nan"), "inf": float("inf"), "low": band[0], "high": band[1]}
    constants = [helper.make_tensor(name, TensorProto.FLOAT, [], [value]) for name, value in values.items()]
    nodes = [
        helper.make_node("Cast", ["face"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["level"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["level", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["good_age"]),
        helper.make_node("Mul", ["level", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "std"], ["good_std"]),
    ]
    nodes += {
        "nan_std": [_same("good_age", "age"), helper.make_node("Add", ["zeros", "nan"], ["age_std"])],
        "inf_std": [_same("good_age", "age"), helper.make_node("Add", ["zeros", "inf"], ["age_std"])],
        "one_per_batch": [
            helper.make_node("ReduceMean", ["good_age"], ["age"], axes=[0], keepdims=1),
            helper.make_node("ReduceMean", ["good_std"], ["age_std"], axes=[0], keepdims=1),
        ],
        "out_of_range": [helper.make_node("Add", ["good_age", "far"], ["age"]), _same("good_std", "age_std")],
        "nan_in_band": [
            _same("good_age", "age"),
            helper.make_node("Greater", ["level", "low"], ["above"]),
            helper.make_node("Less", ["level", "high"], ["below"]),
            helper.make_node("And", ["above", "below"], ["inside"]),
            helper.make_node("Where", ["inside", "nan", "good_std"], ["age_std"]),
        ],
    }[fault]
    graph = helper.make_graph(
        nodes,
        f"faulty_{fault}",
        [helper.make_tensor_value_info("face", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"]) for name in ("age", "age_std")],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    helper.set_model_props(model, metadata_props(size, 0.3, 0, 100, backbone=f"faulty-{fault}"))
    onnx.checker.check_model(model)
    return model


def _same(source: str, target: str) -> onnx.NodeProto:
    return helper.make_node("Identity", [source], [target])
