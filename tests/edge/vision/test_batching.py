"""Padded batches (the GPU path), forced on the CPU: the same ages row for row and the same counts as
unpadded batches, so a padded row never reaches a customer. Real ONNX Runtime sessions, real clips."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from edge.vision.age_model import AgeModel
from edge.vision.batching import padded_sizes, padding_wanted, tensorrt_options

from clips import clip
from onnx_models import expected_age


def crops(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(count)]


def test_sizes_are_powers_of_two_up_to_the_largest_batch():
    assert padded_sizes(16) == (1, 2, 4, 8, 16)
    assert padded_sizes(6) == (1, 2, 4, 6)
    assert padded_sizes(1) == (1,)


def test_auto_pads_on_gpu_providers_only():
    assert padding_wanted("auto", "CUDAExecutionProvider") and padding_wanted("auto", "TensorrtExecutionProvider")
    assert not padding_wanted("auto", "CPUExecutionProvider") and padding_wanted("on", "CPUExecutionProvider")
    assert not padding_wanted("off", "CUDAExecutionProvider")


def test_tensorrt_gets_one_profile_per_size_and_a_cache_folder_per_set(tmp_path):
    options = tensorrt_options(tmp_path, 224, (1, 2, 4))
    assert options["trt_profile_min_shapes"] == "face:1x224x224x3,face:2x224x224x3,face:4x224x224x3"
    assert options["trt_profile_max_shapes"] == options["trt_profile_opt_shapes"] == options["trt_profile_min_shapes"]
    assert options["trt_engine_cache_path"] == str(tmp_path / "batch-1-2-4-224px")


@pytest.mark.parametrize("count", [1, 3, 5, 8, 11])
def test_padded_batches_give_the_unpadded_ages_row_for_row(tiny_model, count):
    padded = AgeModel(tiny_model, ["CPUExecutionProvider"], max_batch=8, batch_padding="on")
    plain = AgeModel(tiny_model, ["CPUExecutionProvider"], max_batch=8, batch_padding="off")
    assert padded.runner is not None and plain.runner is None
    padded.warm_up()
    batch = crops(count)
    (ages, stds), (plain_ages, plain_stds) = padded.predict(batch), plain.predict(batch)
    assert ages.shape == stds.shape == plain_ages.shape == (count,)
    np.testing.assert_array_equal(ages, plain_ages)
    np.testing.assert_array_equal(stds, plain_stds)
    np.testing.assert_allclose(ages, [expected_age(crop) for crop in batch], rtol=1e-5)


def test_warm_up_runs_every_size_and_logs_it(tiny_model, caplog):
    caplog.set_level("INFO")
    model = AgeModel(tiny_model, ["CPUExecutionProvider"], max_batch=4, batch_padding="on")
    model.warm_up()
    assert model.runner is not None and sorted(model.runner._bound) == [1, 2, 4]
    assert any("batch sizes 1,2,4 warmed up" in record.getMessage() for record in caplog.records)


def test_cpu_default_runs_the_batch_as_it_is(tiny_model):
    model = AgeModel(tiny_model, ["CPUExecutionProvider"], max_batch=8)
    model.warm_up()  # nothing to warm up on the CPU
    assert model.runner is None and model.predict(crops(3))[0].shape == (3,)


def test_a_padded_replay_gives_every_customer_the_same_samples(agecam, write_config, assets, tmp_path):
    """Every face inferred on every frame (batches of 1-3, padded to 1, 2 and 4): the customers, their
    ages and sample counts equal the unpadded replay's, and every inference is one customer sample."""
    every = {"max_samples": 1000, "stable_window": 1000, "sample_interval_s": 0, "min_quality": 0}
    results = {}
    for padding in ("off", "on"):
        config = write_config(customer=every, age_model={"batch_padding": padding, "max_batch": 4})
        db = tmp_path / f"{padding}.db"
        video = clip(assets, "face-demographics-walking-and-pause")
        result = agecam("--config", config, "replay", video, "--fast", "--json", "--db", db)
        assert result.code == 0, result.err
        summary = json.loads(result.out)
        samples = sqlite3.connect(db).execute("SELECT sum(samples) FROM customers").fetchone()[0]
        assert summary["age_inferences"] == summary["faces"] == samples
        results[padding] = summary
    off, on = results["off"], results["on"]
    assert on["largest_batch"] == 3 and len(on["customers"]) == 3
    assert [(c["track_id"], c["samples"], c["age"], c["age_low"]) for c in on["customers"]] == [
        (c["track_id"], c["samples"], c["age"], c["age_low"]) for c in off["customers"]
    ]
