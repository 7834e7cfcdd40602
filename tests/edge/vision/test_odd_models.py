"""Age models that go wrong in ways the contract check cannot see, in real ONNX Runtime sessions: one whose
outputs break only for batches above the self-test's five crops, and one that fails at run time on some
faces while its metadata declares an absurdly wide age range."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge.vision.age_model import AgeModel
from edge.vision.model_contract import metadata_props

from clips import clip
from onnx_models import brightness_model, save


def batch_capped(limit: int = 5) -> onnx.ModelProto:
    """The brightness model whose `age` keeps only the first `limit` rows: right for small batches only."""
    model = brightness_model(outputs=("age_all", "age_std"))
    graph = model.graph
    for name, value in (("start", 0), ("end", limit), ("axis", 0)):
        graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [1], [value]))
    graph.node.append(helper.make_node("Slice", ["age_all", "start", "end", "axis"], ["age"]))
    graph.output[0].name = "age"
    onnx.checker.check_model(model)
    return model


def fails_on_bright_faces(age_max: float) -> onnx.ModelProto:
    """The brightness model whose inference fails (Gather out of bounds) for crops of mean level 230 or more,
    with ages 0..age_max in its metadata."""
    model = brightness_model(metadata=metadata_props(32, 0.3, 0, age_max, backbone="bright-fails"))
    graph = model.graph
    graph.initializer.extend(
        [
            helper.make_tensor("bright", TensorProto.FLOAT, [], [230.0]),
            helper.make_tensor("table", TensorProto.FLOAT, [1], [0.0]),
        ]
    )
    next(node for node in graph.node if list(node.output) == ["age"]).output[0] = "plain_age"
    graph.node.extend(
        [
            helper.make_node("Div", ["level", "bright"], ["ratio"]),
            helper.make_node("Floor", ["ratio"], ["whole"]),
            helper.make_node("Cast", ["whole"], ["index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["table", "index"], ["bump"]),
            helper.make_node("Add", ["plain_age", "bump"], ["age"]),
        ]
    )
    onnx.checker.check_model(model)
    return model


def test_a_model_that_breaks_above_five_crops_is_refused_at_load(agecam, write_config, assets, tmp_path):
    """It passed the self-test's batch of five, then dropped every sample of any frame with more faces."""
    model = save(batch_capped(), tmp_path / "capped.onnx")
    config = write_config(age_model={"path": str(model), "max_batch": 8})
    result = agecam("--config", config, "replay", clip(assets, "face-demographics-walking"), "--fast")
    assert result.code == 4, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1 and "Traceback" not in result.err
    assert "capped.onnx" in lines[0] and "batch of 8 (age_model.max_batch)" in lines[0] and "(5,)" in lines[0]


def test_the_same_model_loads_where_the_batch_never_grows_past_it(tmp_path):
    model = AgeModel(save(batch_capped(), tmp_path / "capped.onnx"), ["CPUExecutionProvider"], max_batch=5)
    samples = model.samples([np.full((32, 32, 3), 100, np.uint8)] * 7)  # two batches: 5 and 2
    assert samples.valid.all()


def test_a_failing_batch_is_dropped_whatever_age_range_the_metadata_declares(tmp_path):
    """With ages 0 to 1e12 and no age_probs, a failed batch asked for a 7 TiB array of NaN rows: a
    MemoryError on the age worker, which ended the run, instead of a dropped batch."""
    model = AgeModel(save(fails_on_bright_faces(1e12), tmp_path / "wide.onnx"), ["CPUExecutionProvider"])
    samples = model.samples([np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 255, np.uint8)])
    assert not samples.valid.any() and "inference failed" in samples.problem and samples.probs is None
    good = model.samples([np.full((32, 32, 3), 100, np.uint8)])
    assert good.valid.all()
