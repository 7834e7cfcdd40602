"""Contract versions: 1.1 adds the optional age_temperature, 1.2 the optional flip_tta; version 1 models still
load, with T = 1 and no flip in the file."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edge.errors import ModelError
from edge.vision.model_contract import CONTRACT_VERSION, metadata_props, read_model_info, temper_probs

from onnx_models import brightness_model


def _info(metadata: dict[str, str]):
    session = ort.InferenceSession(brightness_model(metadata=metadata).SerializeToString())
    return read_model_info(session, "test.onnx")


def test_a_version_1_model_without_a_temperature_reads_as_t_1() -> None:
    old = {**metadata_props(32, 0.3, 0, 100), "agecam.contract_version": "1"}
    assert _info(old).age_temperature == 1.0


def test_the_written_version_is_1_2_and_carries_the_temperature() -> None:
    props = metadata_props(32, 0.3, 0, 100, age_temperature=1.25)
    assert props["agecam.contract_version"] == CONTRACT_VERSION == "1.2"
    assert _info(props).age_temperature == 1.25 and _info(props).flip_tta is False


@pytest.mark.parametrize(("value", "flip_tta"), [("true", True), ("false", False), ("yes", None), ("1", None)])
def test_flip_tta_is_true_or_false_and_nothing_else(value: str, flip_tta: bool | None) -> None:
    props = metadata_props(32, 0.3, 0, 100, flip_tta=value)
    if flip_tta is None:
        with pytest.raises(ModelError, match=f"agecam.flip_tta='{value}'"):
            _info(props)
    else:
        assert _info(props).flip_tta is flip_tta


@pytest.mark.parametrize(("version", "readable"), [("1.7", True), ("2", False), ("1.x", False), ("11", False)])
def test_any_minor_version_of_1_is_read_and_nothing_else(version: str, readable: bool) -> None:
    props = {**metadata_props(32, 0.3, 0, 100), "agecam.contract_version": version}
    if readable:
        assert _info(props).age_temperature == 1.0
    else:
        with pytest.raises(ModelError, match="contract version"):
            _info(props)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "warm"])
def test_a_temperature_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(ModelError, match="age_temperature"):
        _info({**metadata_props(32, 0.3, 0, 100), "agecam.age_temperature": value})


def test_tempering_sharpens_below_1_flattens_above_and_keeps_rows_normalised() -> None:
    probs = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    sharp, flat = temper_probs(probs, 0.5), temper_probs(probs, 2.0)
    assert np.allclose(sharp.sum(axis=1), 1) and np.allclose(flat.sum(axis=1), 1)
    assert sharp[0, 2] > probs[0, 2] > flat[0, 2]
    assert np.allclose(sharp[0], probs[0] ** 2 / (probs[0] ** 2).sum())


@pytest.mark.parametrize(
    ("key", "value"),
    [("input_size", "nan"), ("input_size", "inf"), ("crop_margin", "nan"), ("age_min", "-inf"), ("age_max", "inf")],
)
def test_a_metadata_number_that_is_not_finite_is_refused_naming_the_key(key: str, value: str) -> None:
    """float() reads 'nan' and 'inf'; int() of them was a ValueError or OverflowError: a traceback, exit 1."""
    with pytest.raises(ModelError, match=f"agecam.{key}='{value}' is not a finite number"):
        _info({**metadata_props(32, 0.3, 0, 100), f"agecam.{key}": value})


def test_an_age_range_too_wide_for_a_float_is_refused() -> None:
    props = {**metadata_props(32, 0.3, 0, 100), "agecam.age_min": "-1e308", "agecam.age_max": "1e308"}
    with pytest.raises(ModelError, match="metadata out of range"):
        _info(props)


@pytest.mark.parametrize("backbone", ["resnet50\n2026-12-02 INFO agecam: FAKE LOG LINE", "\x1b[2Jx", "y" * 1_000_000])
def test_a_backbone_name_cannot_forge_or_flood_the_tills_log_line(backbone: str) -> None:
    """`describe()` goes into the till's start line and `config check`: a newline in a model's backbone forged
    a log line of its own, an escape cleared the terminal, and a megabyte name filled the log."""
    shown = _info({**metadata_props(32, 0.3, 0, 100), "agecam.backbone": backbone}).describe()
    assert "\n" not in shown and "\x1b" not in shown and len(shown) < 160
    assert shown.startswith(backbone[:8].replace("\n", "?").replace("\x1b", "?"))
