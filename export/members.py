"""`agecam members`: the networks of an `agecam ensemble` file, cut back out as till-ready models.

A pooled file is often all that is left of its members (the bundled model's members are not in git), and a new
pool may want one of them beside a new network. Each member's nodes carry the prefix `m<index>/` in the pooled
graph, from the face input to its own untempered `age_probs`; the cut keeps exactly those nodes, so a member
scores every crop as it did before it was pooled, and pooling the cut members again gives the same file's
outputs. The member gets its own temperature, backbone and provenance back from the pool's `agecam.ensemble`
record, and `agecam.cut_from` names the pool. Mirror images were the pool's (`--flip`), not a member's, so a
cut member does not flip.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from onnx import helper

from edge.errors import ModelError, ModelFileError
from edge.vision.age_model import AgeModel
from edge.vision.model_contract import INPUT_NAME, KEY_PREFIX, OUTPUT_PROBS
from export.checked_write import check_output_path, write_all_checked
from export.ensemble import contract_outputs, member_prefix, pooled_outputs
from export.errors import ExportError

POOL_ONLY_KEYS = ("ensemble", "age_temperature", "flip_tta", "backbone", "code_version", "checkpoint_sha256")


def _origins(pool: AgeModel) -> list[dict[str, object]]:
    try:
        origins = json.loads(pool.info.metadata["ensemble"])
    except KeyError:
        raise ExportError(f"{pool.path}: not an `agecam ensemble` file (no {KEY_PREFIX}ensemble): no members") from None
    except ValueError:
        raise ExportError(
            f"{pool.path}: {KEY_PREFIX}ensemble is not JSON: re-make the pool with agecam ensemble"
        ) from None
    if not isinstance(origins, list) or not all(isinstance(origin, dict) for origin in origins):
        raise ExportError(f"{pool.path}: {KEY_PREFIX}ensemble is not a list of members: re-make the pool")
    return origins


def _value(name: str, like: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    value = onnx.ValueInfoProto()
    value.CopyFrom(like)
    value.name = name
    return value


def _cut(pool: onnx.ModelProto, face: onnx.ValueInfoProto, index: int) -> onnx.GraphProto:
    """Member `index`'s nodes, from its copy of the face input to its untempered age_probs."""
    prefix = member_prefix(index)
    probs = next(value for value in pool.graph.output if value.name == OUTPUT_PROBS)
    known = {value.name for value in pool.graph.value_info}
    for name, like in ((prefix + INPUT_NAME, face), (prefix + OUTPUT_PROBS, probs)):
        if name not in known:  # the extractor needs a type for the ends it cuts at
            pool.graph.value_info.append(_value(name, like))
    try:
        extracted = onnx.utils.Extractor(pool).extract_model([prefix + INPUT_NAME], [prefix + OUTPUT_PROBS])
    except (ValueError, KeyError):
        raise ExportError(f"member {index + 1} is not in the graph as agecam ensemble writes it") from None
    return extracted.graph


def _member_model(pool: onnx.ModelProto, index: int, count: int, age_min: int) -> onnx.ModelProto:
    face = next(value for value in pool.graph.input if value.name == INPUT_NAME)
    cut = _cut(pool, face, index)
    prefix = member_prefix(index)
    nodes = [helper.make_node("Identity", [INPUT_NAME], [prefix + INPUT_NAME]), *cut.node]
    pool_nodes, pool_constants = pooled_outputs([prefix + OUTPUT_PROBS], [prefix + OUTPUT_PROBS], age_min, count)
    graph = helper.make_graph(
        nodes + pool_nodes,
        f"agecam_member_{index + 1}",
        [face],
        contract_outputs(count),
        [*cut.initializer, *pool_constants],
    )
    model = helper.make_model(graph, opset_imports=pool.opset_import)
    model.ir_version = pool.ir_version
    return model


def _metadata(pool: AgeModel, origin: dict[str, object], index: int) -> dict[str, str]:
    shared = {KEY_PREFIX + key: value for key, value in pool.info.metadata.items() if key not in POOL_ONLY_KEYS}
    if shared.get(KEY_PREFIX + "precision") == "mixed":
        shared.pop(KEY_PREFIX + "precision")
    own = {
        "backbone": origin.get("backbone", "unknown"),
        "age_temperature": origin.get("age_temperature", 1.0),
        "checkpoint_sha256": origin.get("checkpoint_sha256", ""),
        "code_version": origin.get("code_version", ""),
        "flip_tta": "false",
        "cut_from": json.dumps({"file": pool.path.name, "sha256": pool.sha256, "member": index + 1}),
    }
    return shared | {KEY_PREFIX + key: str(value) for key, value in own.items()}


def _file_name(origin: dict[str, object], index: int, taken: set[str], pool: Path) -> str:
    """The member's file name as the pool recorded it, unless that is not a plain .onnx name or is taken."""
    name = str(origin.get("file", ""))
    if Path(name).name != name or not name.endswith(".onnx") or name in taken:
        name = f"{pool.stem}-member-{index + 1}.onnx"
    taken.add(name)
    return name


def cut_members(pool_path: Path, out_dir: Path) -> dict[str, object]:
    """Write every member of the ensemble file `pool_path` into `out_dir`, each checked as the till would."""
    try:
        pool = AgeModel(pool_path, ["CPUExecutionProvider"], remedy="give an ONNX file written by agecam ensemble")
    except ModelFileError as error:  # the path is wrong, not the file: "till-ready" would mislead
        raise ExportError(str(error)) from None
    except ModelError as error:
        raise ExportError(f"{error}: only till-ready ensemble files can be taken apart") from None
    origins = _origins(pool)
    graph = onnx.load(str(pool_path))
    count = int(pool.info.age_max - pool.info.age_min) + 1
    members, taken = [], set()
    for index, origin in enumerate(origins):  # cut them all first: a pool that cannot be cut leaves no file
        out = out_dir / _file_name(origin, index, taken, pool_path)
        check_output_path(out)
        model = _member_model(graph, index, count, int(pool.info.age_min))
        helper.set_model_props(model, _metadata(pool, origin, index))
        members.append((out, model, origin))
    # All checked before any is renamed into place: a member that fails its check leaves no other behind.
    files = [
        (out, lambda path, model=model: onnx.save(model, str(path)), f"member {index + 1}")
        for index, (out, model, _) in enumerate(members)
    ]
    written = [
        {
            "out": str(out),
            "sha256": member.sha256,
            "was": origin.get("sha256", ""),
            "backbone": member.info.metadata.get("backbone"),
            "age_temperature": member.info.age_temperature,
        }
        for (out, _, origin), member in zip(members, write_all_checked(files), strict=True)
    ]
    return {"pool": str(pool_path), "members": written, "next": "agecam ensemble MEMBER.onnx... --out POOL.onnx"}
