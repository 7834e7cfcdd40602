"""docs/model-contract.md in code: the metadata keys, and the check every age model must pass."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import ModelError
from edge.vision.faces import CropSpec

if TYPE_CHECKING:  # sessions come from edge.vision.age_model, which imports ONNX Runtime
    import onnxruntime as ort

# 1.1 added the optional agecam.age_temperature, 1.2 the optional agecam.flip_tta. A minor version only adds
# optional keys, so any 1.x model runs here (a plain "1" model has no temperature: T = 1).
CONTRACT_VERSION = "1.2"
READABLE_VERSION = re.compile(r"1(\.\d+)?")
KEY_PREFIX = "agecam."
REQUIRED_KEYS = ("contract_version", "input_size", "crop_margin", "age_min", "age_max")
INPUT_NAME = "face"
OUTPUT_AGE = "age"
OUTPUT_STD = "age_std"
OUTPUT_PROBS = "age_probs"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # line breaks and terminal escapes


@dataclass(frozen=True)
class ModelInfo:
    """What the edge needs to know about an age model, read from its graph and metadata."""

    crop: CropSpec
    age_min: float
    age_max: float
    outputs: tuple[str, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    age_temperature: float = 1.0  # calibrates age_probs: p^(1/T), renormalised (temper_probs)
    flip_tta: bool = False  # the graph already averages each crop with its mirror image (contract 1.2)

    def describe(self) -> str:
        backbone = printable(self.metadata.get("backbone", "unknown backbone"))
        ages = f"ages {self.age_min:g}-{self.age_max:g}"
        return f"{backbone}, {self.crop.size} px crops, margin {self.crop.margin}, {ages}"


def printable(text: str, limit: int = 80) -> str:
    """A metadata value fit for one log line: a newline in a model's `backbone` forged lines of the till's log
    (and `config check`'s), and a megabyte value filled it."""
    shown = CONTROL.sub("?", text)
    return shown if len(shown) <= limit else f"{shown[: limit - 3]}..."


def _number(metadata: dict[str, str], key: str, origin: str) -> float:
    # float() reads "nan" and "inf" too; the checks after this one would raise ValueError/OverflowError on them
    # (int(nan)), a traceback and exit 1 instead of exit 4 naming the key.
    try:
        value = float(metadata[key])
    except ValueError:
        raise ModelError(f"{origin}: metadata {KEY_PREFIX}{key}={metadata[key]!r} is not a number") from None
    if not math.isfinite(value):
        raise ModelError(f"{origin}: metadata {KEY_PREFIX}{key}={metadata[key]!r} is not a finite number")
    return value


def _check_input(session: ort.InferenceSession, size: int, origin: str) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"{origin}: the model must have exactly one input (face crops), it has {len(inputs)}")
    face = inputs[0]
    shape = face.shape
    if face.name != INPUT_NAME:
        raise ModelError(f"{origin}: the input must be named '{INPUT_NAME}', found '{face.name}'")
    if face.type != "tensor(uint8)" or len(shape) != 4:
        raise ModelError(f"{origin}: input '{face.name}' must be uint8 NHWC, found {face.type} {shape}")
    if list(shape[1:]) != [size, size, 3]:
        raise ModelError(f"{origin}: input '{face.name}' must be [N, {size}, {size}, 3] BGR, found {shape}")
    if isinstance(shape[0], int) and shape[0] != -1:
        raise ModelError(f"{origin}: input '{face.name}' needs a dynamic batch dimension, found {shape[0]}")


def _check_outputs(session: ort.InferenceSession, ages: int, origin: str) -> tuple[str, ...]:
    outputs = {out.name: out for out in session.get_outputs()}
    for name in (OUTPUT_AGE, OUTPUT_STD):
        if name not in outputs:
            raise ModelError(f"{origin}: the model has no '{name}' output (it has {sorted(outputs)})")
        if outputs[name].type != "tensor(float)" or len(outputs[name].shape) != 1:
            found = f"{outputs[name].type} {outputs[name].shape}"
            raise ModelError(f"{origin}: output '{name}' must be float32 of shape [N], found {found}")
    probs = outputs.get(OUTPUT_PROBS)
    if probs is not None:  # optional; when present the till fuses it, so its shape must fit the ages
        shape = probs.shape
        width = shape[1] if len(shape) == 2 else None
        if probs.type != "tensor(float)" or len(shape) != 2 or (isinstance(width, int) and width != ages):
            found = f"{probs.type} {shape}"
            raise ModelError(f"{origin}: output '{OUTPUT_PROBS}' must be float32 [N, {ages}], found {found}")
    return tuple(outputs)


def read_model_info(session: ort.InferenceSession, origin: str) -> ModelInfo:
    """Validate a loaded session against the contract; raise ModelError naming what is wrong."""
    raw = session.get_modelmeta().custom_metadata_map
    metadata = {key.removeprefix(KEY_PREFIX): value for key, value in raw.items() if key.startswith(KEY_PREFIX)}
    missing = [KEY_PREFIX + key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ModelError(f"{origin}: not an agecam age model: metadata lacks {', '.join(missing)}")
    if not READABLE_VERSION.fullmatch(metadata["contract_version"]):
        raise ModelError(
            f"{origin}: model contract version {metadata['contract_version']!r} is not supported "
            f"(this agecam reads version 1 and its minor versions, 1.x): export the model again"
        )
    size = _number(metadata, "input_size", origin)
    margin = _number(metadata, "crop_margin", origin)
    age_min, age_max = _number(metadata, "age_min", origin), _number(metadata, "age_max", origin)
    span = age_max - age_min  # finite ends can still overflow: -1e308 to 1e308
    if size != int(size) or not 16 <= size <= 1024 or not 0 <= margin <= 2 or not 0 < span < math.inf:
        raise ModelError(
            f"{origin}: metadata out of range (input_size {size}, crop_margin {margin}, ages {age_min}-{age_max})"
        )
    _check_input(session, int(size), origin)
    outputs = _check_outputs(session, int(age_max - age_min) + 1, origin)
    temperature, flip_tta = _temperature(metadata, origin), _flip_tta(metadata, origin)
    return ModelInfo(CropSpec(int(size), margin), age_min, age_max, outputs, metadata, temperature, flip_tta)


def _flip_tta(metadata: dict[str, str], origin: str) -> bool:
    value = metadata.get("flip_tta", "false")
    if value not in ("true", "false"):
        raise ModelError(f"{origin}: metadata {KEY_PREFIX}flip_tta={value!r} must be 'true' or 'false'")
    return value == "true"


def _temperature(metadata: dict[str, str], origin: str) -> float:
    if "age_temperature" not in metadata:
        return 1.0
    value = _number(metadata, "age_temperature", origin)
    if not (math.isfinite(value) and value > 0):
        raise ModelError(f"{origin}: metadata {KEY_PREFIX}age_temperature={value} must be a positive number")
    return value


def temper_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Apply a model's temperature to its age_probs rows: p^(1/T), renormalised (softmax(logits / T))."""
    logp = np.log(np.maximum(np.asarray(probs, np.float64), 1e-30)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    tempered = np.exp(logp)
    return tempered / tempered.sum(axis=1, keepdims=True)


def probability_below(probs: np.ndarray, age_min: float, threshold: float) -> np.ndarray:
    """P(age < threshold) per row of age_probs: the mass on the integer ages below it."""
    ages = age_min + np.arange(probs.shape[1])
    # A row with all its mass below sums to 1 + 1e-16 now and then, which CustomerAge refuses as "not a
    # probability" (and then uses the normals for that customer); NaN rows stay NaN.
    return np.clip(probs[:, ages < threshold].sum(axis=1), 0.0, 1.0)


def metadata_props(size: int, margin: float, age_min: int, age_max: int, **extra: object) -> dict[str, str]:
    """The metadata an exporter writes: required keys plus extras (non-strings stored as JSON)."""
    values: dict[str, object] = {
        "contract_version": CONTRACT_VERSION,
        "input_size": size,
        "crop_margin": margin,
        "age_min": age_min,
        "age_max": age_max,
        **extra,
    }
    return {KEY_PREFIX + key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}
