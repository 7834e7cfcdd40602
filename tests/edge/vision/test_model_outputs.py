"""Age model outputs are checked, not trusted (issue #14, item 4): a model whose outputs are NaN or
infinite, one per batch, or far outside its declared age range is refused at load with exit 4 and one
line; a model that goes wrong on some faces only has those samples dropped and counted while the run
goes on, and no flag is lost."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.config import CustomerConfig
from edge.errors import ModelError
from edge.vision.age_model import AgeModel
from edge.vision.customer import CustomerAge
from edge.vision.model_contract import metadata_props, probability_below, temper_probs
from edge.vision.model_outputs import self_test_crops

from clips import clip
from onnx_models import AGE_STD, brightness_model, faulty_model, save
from pos_scenario import replay, scenario_config

REFUSED = {
    "nan_std": "age_std nan",
    "inf_std": "age_std inf",
    "one_per_batch": "gave outputs of shape (1,)",
    "out_of_range": "age 537",
}


@pytest.mark.parametrize("fault", list(REFUSED))
def test_a_model_with_bad_outputs_is_refused_at_load_with_exit_4(agecam, write_config, tmp_path, assets, fault):
    model = save(faulty_model(fault), tmp_path / f"{fault}.onnx")
    video = clip(assets, "face-demographics-walking")
    result = agecam("--config", write_config(age_model={"path": str(model)}), "replay", video, "--fast")
    assert result.code == 4, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1 and "Traceback" not in result.err
    assert f"{fault}.onnx" in lines[0] and "self-test" in lines[0] and REFUSED[fault] in lines[0]
    assert not (tmp_path / "state").exists(), "refused before the event log is opened"


def level(crop: np.ndarray) -> float:
    return float(crop.astype(np.float64).mean())


def test_bad_samples_are_dropped_per_crop_within_a_batch(tmp_path):
    model = AgeModel(save(faulty_model("nan_in_band", band=(95, 125)), tmp_path / "m.onnx"), ["CPUExecutionProvider"])
    crops = [np.full((32, 32, 3), value, np.uint8) for value in (60, 110, 200, 120)]
    samples = model.samples(crops)
    assert samples.valid.tolist() == [True, False, True, False]
    assert np.isfinite(samples.ages[samples.valid]).all() and "age_std nan" in samples.problem


def test_samples_carry_the_calibrated_age_distribution_and_drop_a_broken_one(tmp_path):
    metadata = metadata_props(32, 0.3, 0, 100, backbone="brightness-test", age_temperature=2.0)
    # NaN above 60: clear of the self-test's crops (ages 23-56), which a NaN distribution would fail
    model = save(brightness_model(metadata=metadata, probs=True, probs_nan_above=60), tmp_path / "m.onnx")
    crops = [np.full((32, 32, 3), value, np.uint8) for value in (40, 240, 80)]  # ages 15, 65, 25
    samples = AgeModel(model, ["CPUExecutionProvider"]).samples(crops)
    assert samples.valid.tolist() == [True, False, True] and "age_probs" in samples.problem
    raw = np.exp(-0.5 * ((np.arange(101) - 15.0) / AGE_STD) ** 2)
    assert np.allclose(samples.probs[0], temper_probs((raw / raw.sum())[None], 2.0)[0], atol=1e-5)
    assert np.isnan(samples.probs[1]).all()
    assert probability_below(samples.probs[2:], 0, 25)[0] == pytest.approx(0.5 - 0.5 * samples.probs[2, 25], abs=1e-6)


def test_a_model_whose_age_probs_do_not_fit_its_ages_is_refused(tmp_path):
    metadata = metadata_props(32, 0.3, 0, 80, backbone="brightness-test")  # 81 ages, but 101 columns
    model = save(brightness_model(metadata=metadata, probs=True), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match=r"output 'age_probs' must be float32 \[N, 81\]"):
        AgeModel(model, ["CPUExecutionProvider"])


def hidden_width_probs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its age_probs cut by a Slice whose end is computed from the crops (always all 101
    columns), declared [N, K]: no check of the graph can tell the width, only running it can."""
    graph = model.graph
    next(node for node in graph.node if node.output[0] == "age_probs").output[0] = "all_probs"
    graph.initializer.extend(
        [helper.make_tensor(name, TensorProto.INT64, [1], [value]) for name, value in (("at0", 0), ("axis", 1))]
        + [helper.make_tensor("columns", TensorProto.FLOAT, [], [101.0])]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceMin", ["level"], ["least"], keepdims=1),
            helper.make_node("Mul", ["least", "zero"], ["nought"]),
            helper.make_node("Add", ["nought", "columns"], ["end_float"]),
            helper.make_node("Cast", ["end_float"], ["end"], to=TensorProto.INT64),
            helper.make_node("Slice", ["all_probs", "at0", "end", "axis"], ["age_probs"]),
        ]
    )
    width = graph.output[2].type.tensor_type.shape.dim[1]
    width.ClearField("dim_value")
    width.dim_param = "K"
    return model


def test_a_model_whose_age_probs_fail_on_every_crop_is_refused_at_load(tmp_path):
    """Not loaded to drop every sample at run time: NaN distributions, or 101 columns for 81 ages where the
    graph declares a symbolic width."""
    broken = save(brightness_model(probs=True, probs_nan_above=-1), tmp_path / "nan.onnx")
    with pytest.raises(ModelError, match=r"nan.onnx: the model fails its output self-test .*: age_probs with a non"):
        AgeModel(broken, ["CPUExecutionProvider"])
    narrow = brightness_model(metadata=metadata_props(32, 0.3, 0, 80), probs=True)
    hidden = save(hidden_width_probs(narrow), tmp_path / "hidden.onnx")
    with pytest.raises(ModelError, match=r"self-test .*age_probs of shape \(1, 101\), not \[1, 81\]"):
        AgeModel(hidden, ["CPUExecutionProvider"])


def test_a_sample_with_all_its_mass_below_the_threshold_stays_in_the_pool(tmp_path):
    """A confident head (a normal of 1 year) on young faces: P(age < 25) summed in floating point came out
    1.0000000000000002, was taken for 'not a probability', and switched the customer to the normals."""
    model = brightness_model(probs=True)
    sharp = next(tensor for tensor in model.graph.initializer if tensor.name == "minus_half_var")
    sharp.CopyFrom(numpy_helper.from_array(np.array(-0.5, np.float32), "minus_half_var"))
    samples = AgeModel(save(model, tmp_path / "sharp.onnx"), ["CPUExecutionProvider"]).samples(
        [np.full((32, 32, 3), value, np.uint8) for value in range(60)]  # ages 5-19.75
    )
    below = probability_below(samples.probs, 0, 25)
    assert samples.valid.all() and (below <= 1).all()
    customer = CustomerAge(CustomerConfig(), risk_age=25)
    for second, p_under in enumerate(below[:3]):
        customer.add(float(samples.ages[second]), float(samples.stds[second]), 1.0, second, float(p_under))
    assert customer.estimate.p_under == pytest.approx(below[:3].mean()), "the linear pool, not the normals"


def flagged(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        rows = connection.execute(
            "SELECT t.pos_transaction_id, a.type FROM alerts a JOIN transactions t ON t.id = a.transaction_id"
            " WHERE a.kind = 'flag'"
        ).fetchall()
    return dict(rows)


def test_a_model_that_fails_on_some_faces_loses_no_flag(tmp_path, scenario, default_run, capsys):
    """The scenario's young customers are darkened faces (mean level about 100-124): the model gives NaN
    for them alone. Their samples are dropped, so they have no estimate, and each of their sales is still
    flagged, as no_face instead of sold_without_id_check."""
    assert all(not 95 < level(crop) < 125 for crop in self_test_crops(32).values()), "the self-test must pass"
    model = save(faulty_model("nan_in_band", band=(95, 125)), tmp_path / "half.onnx")
    db = tmp_path / "run.db"
    capsys.readouterr()
    assert replay(scenario_config(tmp_path, model), scenario, db) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["bad_age_samples"] > 0 and summary["model"]["sha256"]
    assert err.count("unusable sample(s), dropped") == 1, "the warning is rate-limited"
    good = flagged(default_run[2])
    bad = flagged(db)
    assert good and set(good) <= set(bad), f"a flag was lost: {good} vs {bad}"
    assert {bad[txn] for txn in good} <= {"no_face", "sold_without_id_check"}
