"""`agecam calibrate` on real valid photos: the temperature is fitted on the model's own age_probs through the
till's path and written into the model, which the till then reads; bad input is one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.errors import EXIT_EXPORT
from edge.vision.age_model import AgeModel
from edge.vision.model_contract import CONTRACT_VERSION, metadata_props

from onnx_models import brightness_model, save


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return save(brightness_model(probs=True), tmp_path / "m.onnx")


def test_the_fitted_temperature_is_stored_and_read_by_the_till(
    run_cli, model: Path, tiny_appa: Path, tiny_utk: Path, small_utk: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "calibrated.onnx"
    before = model.read_bytes()
    argv = ["calibrate", str(model), "--data", str(tiny_appa), str(tiny_utk), str(small_utk), "--out", str(out)]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["crops"] >= 32 and report["previous_temperature"] == 1.0
    assert report["age_temperature"] > 1.5, "a 3-year-wide guess from brightness is far too confident"
    assert report["nll"]["after"] < report["nll"]["before"]
    till = AgeModel(out, ["CPUExecutionProvider"])
    assert till.info.age_temperature == report["age_temperature"]
    assert till.info.metadata["contract_version"] == CONTRACT_VERSION
    assert model.read_bytes() == before, "the input is left alone when --out names another file"


def test_a_model_without_age_probs_is_refused_in_one_line(run_cli, tiny_appa: Path, tmp_path: Path, capsys) -> None:
    plain = save(brightness_model(), tmp_path / "plain.onnx")
    before = plain.read_bytes()
    assert (
        run_cli(["calibrate", str(plain), "--data", str(tiny_appa), "--cache-dir", str(tmp_path / "c")]) == EXIT_EXPORT
    )
    line = capsys.readouterr().out.strip()
    assert "plain.onnx" in line and "age_probs" in line and "\n" not in line
    assert plain.read_bytes() == before and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_later_minor_contract_version_is_kept_not_written_down(
    run_cli, tiny_appa: Path, tiny_utk: Path, small_utk: Path, tmp_path: Path, capsys
) -> None:
    """A model from a newer agecam (contract 1.7) came back from calibrate marked 1.2: a 1.7 till would then read
    its 1.7 keys as keys of a version that has none."""
    props = metadata_props(32, 0.3, 0, 100, backbone="newer")
    newer = save(
        brightness_model(probs=True, metadata={**props, "agecam.contract_version": "1.7"}), tmp_path / "n.onnx"
    )
    argv = ["calibrate", str(newer), "--data", str(tiny_appa), str(tiny_utk), str(small_utk)]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == 0
    assert AgeModel(newer, ["CPUExecutionProvider"]).info.metadata["contract_version"] == "1.7"


def test_an_output_that_is_a_folder_is_refused_before_anything_is_read(
    run_cli, model: Path, tmp_path: Path, capsys
) -> None:
    """Before, the folder was found by the final rename, after every crop was made and the fit done."""
    folder = tmp_path / "out.onnx"
    folder.mkdir()
    assert run_cli(["calibrate", str(model), "--data", str(tmp_path / "no-data"), "--out", str(folder)]) == EXIT_EXPORT
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and str(folder) in line and "is a folder" in line
    assert not list(folder.iterdir())
