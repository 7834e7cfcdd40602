"""`agecam ensemble`: several exported age models in one ONNX file that the till runs as one model.

Each member's `age_probs` is tempered by its own `agecam.age_temperature` inside the graph and the members'
distributions are averaged (a linear pool, as the till pools a customer's samples); `age` and `age_std` are
the expected value and spread of the mean of the untempered distributions, so that, as in an export, a
temperature calibrates the probabilities without moving the estimate. The members must share the crop (size,
margin) and the ages, since the till cuts one crop per face for the whole file. With `flip`, every member also
scores the mirror image of each crop and the pool takes both (flip test-time augmentation inside the file,
`agecam.flip_tta`, so `agecam eval` and every till get the same figures); one model alone may then be
"ensembled" with its mirror. A member is one network: a pool's `age_probs` are already tempered, and an
age read off them would move, so a pool is taken apart first (`agecam members`). Run `agecam calibrate` on
the result: the mean of several calibrated distributions is wider than each, and its own temperature is
fitted on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.errors import ModelError, ModelFileError
from edge.vision.age_model import AgeModel
from edge.vision.model_contract import (
    CONTRACT_VERSION,
    INPUT_NAME,
    KEY_PREFIX,
    OUTPUT_AGE,
    OUTPUT_PROBS,
    OUTPUT_STD,
    ModelInfo,
)
from export.checked_write import check_output_path, write_checked
from export.errors import ExportError
from export.provenance import code_version

Nodes = list[onnx.NodeProto]
Tensors = list[onnx.TensorProto]
SHARED_KEYS = ("input_size", "crop_margin", "age_min", "age_max")  # one crop and one age range for every member


def _check_members(paths: list[Path], flip: bool) -> list[AgeModel]:
    """Every member passes the till's contract, has age_probs, and shares the crop and ages of the first."""
    if len(paths) < (1 if flip else 2):
        raise ExportError("an ensemble needs at least two models (or one with --flip): name more MODEL.onnx files")
    members: list[AgeModel] = []
    for path in paths:
        try:
            member = AgeModel(
                path, ["CPUExecutionProvider"], remedy="check the MODEL.onnx paths given to agecam ensemble"
            )
        except ModelFileError as error:  # the path is wrong, not the model: "till-ready" would mislead
            raise ExportError(str(error)) from None
        except ModelError as error:
            raise ExportError(f"{error}: only till-ready models can be ensembled") from None
        info = member.info
        if OUTPUT_PROBS not in info.outputs:
            raise ExportError(f"{path}: the model has no '{OUTPUT_PROBS}' output: an ensemble averages age_probs")
        if 1.0 / info.age_temperature > float(np.finfo(np.float32).max):
            # the graph tempers in float32: 1/T overflows to inf, and every pooled age_probs row came out NaN
            raise ExportError(
                f"{path}: {KEY_PREFIX}age_temperature={info.age_temperature:g} is too small to pool (1/T overflows "
                "a float32): run agecam calibrate on the model first"
            )
        if flip and info.flip_tta:
            raise ExportError(f"{path}: the model already mirrors each crop ({KEY_PREFIX}flip_tta): leave out --flip")
        if "ensemble" in info.metadata:  # its age_probs are tempered, and an age read off them would move
            raise ExportError(
                f"{path}: the model is an ensemble ({KEY_PREFIX}ensemble): take it apart with agecam members "
                "and pool its members"
            )
        for key in SHARED_KEYS:
            if members and float(info.metadata[key]) != float(members[0].info.metadata[key]):
                first = members[0].info.metadata[key]
                raise ExportError(
                    f"{path}: {KEY_PREFIX}{key} is {info.metadata[key]} where {paths[0].name} has {first}: "
                    "ensemble models exported for the same crop and ages"
                )
        members.append(member)
    return members


def member_prefix(index: int) -> str:
    """Every name of member `index` in a pooled graph starts with this (`agecam members` cuts by it)."""
    return f"m{index}/"


def _member_graph(model: onnx.ModelProto, index: int) -> tuple[onnx.ModelProto, str]:
    """The member cut down to face -> age_probs, every name prefixed; returns (model, its age_probs name)."""
    extracted = onnx.utils.Extractor(model).extract_model([INPUT_NAME], [OUTPUT_PROBS])
    prefix = member_prefix(index)
    return onnx.compose.add_prefix(extracted, prefix), prefix + OUTPUT_PROBS


def _standard_opset(model: onnx.ModelProto) -> int:
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def _opsets(paths: list[Path], models: list[onnx.ModelProto]) -> list[onnx.OperatorSetIdProto]:
    """The members' operator sets: one version of the standard ops for all (an op's meaning can change between
    versions), the highest of each other domain (quantization's com.microsoft and the like)."""
    versions: dict[str, set[int]] = {}
    for model in models:
        for entry in model.opset_import:
            domain = "" if entry.domain in ("", "ai.onnx") else entry.domain  # two spellings of the standard ops
            versions.setdefault(domain, set()).add(entry.version)
    standard = versions.get("", set())
    if len(standard) > 1:
        found = ", ".join(f"{path.name} {_standard_opset(model)}" for path, model in zip(paths, models, strict=True))
        raise ExportError(f"the members use different ONNX opsets ({found}): export them with one agecam version")
    return [helper.make_opsetid(domain, max(found)) for domain, found in versions.items()]


def _tempered(probs: str, temperature: float, name: str) -> tuple[Nodes, Tensors, str]:
    """Nodes for softmax(log(p) / T), the contract's temper_probs; none when T is 1."""
    if temperature == 1.0:
        return [], [], probs
    tiny, inverse = f"{name}/tiny", f"{name}/inverse_t"
    constants = [
        numpy_helper.from_array(np.array(1e-30, np.float32), tiny),
        numpy_helper.from_array(np.array(1.0 / temperature, np.float32), inverse),
    ]
    nodes = [
        helper.make_node("Max", [probs, tiny], [f"{name}/floored"]),
        helper.make_node("Log", [f"{name}/floored"], [f"{name}/log"]),
        helper.make_node("Mul", [f"{name}/log", inverse], [f"{name}/scaled"]),
        helper.make_node("Softmax", [f"{name}/scaled"], [f"{name}/tempered"], axis=1),
    ]
    return nodes, constants, f"{name}/tempered"


def _mirrored_input() -> tuple[Nodes, Tensors, str]:
    """The crops followed by their mirror images (width reversed): one batch of 2N for each member."""
    constants = [
        numpy_helper.from_array(np.array([-1], np.int64), "flip/start"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).min], np.int64), "flip/end"),
        numpy_helper.from_array(np.array([2], np.int64), "flip/width_axis"),
        numpy_helper.from_array(np.array([-1], np.int64), "flip/step"),
    ]
    nodes = [
        helper.make_node(
            "Slice", [INPUT_NAME, "flip/start", "flip/end", "flip/width_axis", "flip/step"], ["flip/mirror"]
        ),
        helper.make_node("Concat", [INPUT_NAME, "flip/mirror"], ["flip/both"], axis=0),
    ]
    return nodes, constants, "flip/both"


def _mean_of_halves(probs: str, count: int, opset: int, name: str) -> tuple[Nodes, Tensors, str]:
    """[2N, K] rows of crops then mirrors -> [N, K]: each crop's mean with its mirror."""
    shape = numpy_helper.from_array(np.array([2, -1, count], np.int64), f"{name}/pair_shape")
    axes = numpy_helper.from_array(np.array([0], np.int64), f"{name}/pair_axis")
    reshape = helper.make_node("Reshape", [probs, shape.name], [f"{name}/pairs"])
    if opset >= 18:  # ReduceMean's axes became an input in opset 18
        mean = helper.make_node("ReduceMean", [f"{name}/pairs", axes.name], [f"{name}/mean"], keepdims=0)
        return [reshape, mean], [shape, axes], f"{name}/mean"
    mean = helper.make_node("ReduceMean", [f"{name}/pairs"], [f"{name}/mean"], axes=[0], keepdims=0)
    return [reshape, mean], [shape], f"{name}/mean"


def pooled_outputs(raw: list[str], tempered: list[str], age_min: int, count: int) -> tuple[Nodes, Tensors]:
    """age_probs = the mean of the members' tempered distributions; age and age_std the expected value and
    spread of the mean of their raw ones, as each member's own outputs are: a temperature calibrates the
    probabilities and leaves the estimate alone (it would move the expected value, and MAE with it)."""
    ages = np.arange(age_min, age_min + count, dtype=np.float32)
    constants = [
        numpy_helper.from_array(np.array(1.0 / len(raw), np.float32), "pool/weight"),
        numpy_helper.from_array(ages, "pool/ages"),
        numpy_helper.from_array(ages * ages, "pool/ages_squared"),
        numpy_helper.from_array(np.array(0.0, np.float32), "pool/zero"),
    ]
    nodes = [
        helper.make_node("Sum", tempered, ["pool/tempered_sum"]),
        helper.make_node("Mul", ["pool/tempered_sum", "pool/weight"], [OUTPUT_PROBS]),
        helper.make_node("Sum", raw, ["pool/raw_sum"]),
        helper.make_node("Mul", ["pool/raw_sum", "pool/weight"], ["pool/raw"]),
        helper.make_node("MatMul", ["pool/raw", "pool/ages"], [OUTPUT_AGE]),
        helper.make_node("MatMul", ["pool/raw", "pool/ages_squared"], ["pool/second_moment"]),
        helper.make_node("Mul", [OUTPUT_AGE, OUTPUT_AGE], ["pool/mean_squared"]),
        helper.make_node("Sub", ["pool/second_moment", "pool/mean_squared"], ["pool/variance"]),
        helper.make_node("Max", ["pool/variance", "pool/zero"], ["pool/variance_floored"]),
        helper.make_node("Sqrt", ["pool/variance_floored"], [OUTPUT_STD]),
    ]
    return nodes, constants


def contract_outputs(count: int) -> list[onnx.ValueInfoProto]:
    """age, age_std and age_probs over `count` ages, for N crops."""
    return [
        helper.make_tensor_value_info(OUTPUT_AGE, TensorProto.FLOAT, ["N"]),
        helper.make_tensor_value_info(OUTPUT_STD, TensorProto.FLOAT, ["N"]),
        helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, ["N", count]),
    ]


def _metadata(members: list[AgeModel], flip: bool) -> dict[str, str]:
    """The first member's contract keys; backbone, precision and training data of all; each member's origin."""
    infos = [member.info for member in members]
    first = {KEY_PREFIX + key: value for key, value in infos[0].metadata.items()}
    for key in ("age_temperature", "valid_metrics", "checkpoint_sha256", "cut_from"):  # the members' own
        first.pop(KEY_PREFIX + key, None)
    precisions = {info.metadata.get("precision", "unknown") for info in infos}
    datasets = sorted({name for info in infos for name in _training_datasets(info)})
    origins = [
        {
            "file": member.path.name,
            "sha256": member.sha256,
            "backbone": member.info.metadata.get("backbone", "unknown"),
            "age_temperature": member.info.age_temperature,
            "checkpoint_sha256": member.info.metadata.get("checkpoint_sha256", ""),
            "code_version": member.info.metadata.get("code_version", ""),
        }
        for member in members
    ]
    return first | {
        f"{KEY_PREFIX}backbone": " + ".join(info.metadata.get("backbone", "unknown") for info in infos),
        f"{KEY_PREFIX}precision": precisions.pop() if len(precisions) == 1 else "mixed",
        f"{KEY_PREFIX}training_data": json.dumps({"datasets": datasets, "split": "train"}),
        f"{KEY_PREFIX}ensemble": json.dumps(origins),
        f"{KEY_PREFIX}code_version": code_version(),
        f"{KEY_PREFIX}flip_tta": "true" if flip or all(info.flip_tta for info in infos) else "false",
        f"{KEY_PREFIX}contract_version": CONTRACT_VERSION,
    }


def _training_datasets(info: ModelInfo) -> list[str]:
    try:
        return list(json.loads(info.metadata.get("training_data", "{}")).get("datasets", []))
    except (ValueError, AttributeError):
        return []


def build_ensemble(members: list[AgeModel], flip: bool = False) -> onnx.ModelProto:
    """One graph: the shared face input (with its mirror images, with `flip`) feeds every member; the pooled
    outputs follow the contract."""
    paths = [member.path for member in members]
    models = [onnx.load(str(path)) for path in paths]
    opsets = _opsets(paths, models)
    standard = next(entry.version for entry in opsets if entry.domain == "")
    first = members[0].info
    count = int(first.age_max - first.age_min) + 1
    nodes, initializers = [], []

    def add(step: tuple[Nodes, Tensors, str]) -> str:
        nodes.extend(step[0])
        initializers.extend(step[1])
        return step[2]

    source = add(_mirrored_input()) if flip else INPUT_NAME
    raw, tempered = [], []
    for index, (model, member) in enumerate(zip(models, members, strict=True)):
        cut, probs = _member_graph(model, index)
        prefix = member_prefix(index)
        nodes.append(helper.make_node("Identity", [source], [prefix + INPUT_NAME]))
        nodes.extend(cut.graph.node)
        initializers.extend(cut.graph.initializer)
        calibrated = add(_tempered(probs, member.info.age_temperature, prefix + "calibrated"))
        if flip:  # each crop's mean with its mirror image, raw and tempered alike (one mean when T is 1)
            mean = add(_mean_of_halves(probs, count, standard, prefix + "raw_flip"))
            if calibrated == probs:
                calibrated = mean
            else:
                calibrated = add(_mean_of_halves(calibrated, count, standard, prefix + "tempered_flip"))
            probs = mean
        raw.append(probs)
        tempered.append(calibrated)
    pool_nodes, pool_constants = pooled_outputs(raw, tempered, int(first.age_min), count)
    face = next(value for value in models[0].graph.input if value.name == INPUT_NAME)
    outputs = contract_outputs(count)
    graph = helper.make_graph(nodes + pool_nodes, "agecam_ensemble", [face], outputs, initializers + pool_constants)
    ensemble = helper.make_model(graph, opset_imports=opsets)
    ensemble.ir_version = max(model.ir_version for model in models)
    helper.set_model_props(ensemble, _metadata(members, flip))
    onnx.checker.check_model(ensemble)
    return ensemble


def ensemble_models(paths: list[Path], out: Path, flip: bool = False) -> dict[str, object]:
    """Write the ensemble of `paths` to `out` (atomically, after the till's own contract check)."""
    check_output_path(out)
    model = build_ensemble(_check_members(paths, flip), flip)
    written = write_checked(out, lambda path: onnx.save(model, str(path)), "ensemble")
    info = written.info
    return {
        "out": str(out),
        "sha256": written.sha256,
        "members": json.loads(info.metadata["ensemble"]),
        "model": info.describe(),
        "flip_tta": info.flip_tta,
        "next": f"agecam calibrate {out} --data DATASET... (fits the ensemble's own temperature on valid photos)",
    }
