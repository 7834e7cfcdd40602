"""Export on a tiny model trained within the test: contract, parity with torch on real crops, int8/fp16
variants, the edge running the result on a real clip, and clean failures that leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edge.vision.age_model import AgeModel
from export.errors import ExportError
from export.exporter import PARITY_MAX_ABS, PARITY_MEAN_ABS, export_checkpoint, parity, valid_crops
from train.checkpoint import load_checkpoint

from clips import clip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tiny_appa: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("models")
    return {
        precision: export_checkpoint(
            checkpoint,
            folder / f"age-{precision}.onnx",
            precision,
            [str(tiny_appa)],
            parity_crops=12,
            calibration_crops=12,
        )
        for precision in ("fp32", "int8", "fp16")
    }


def test_fp32_export_carries_the_contract_metadata(exported, checkpoint):
    report = exported["fp32"]
    props = {p.key: p.value for p in onnx.load(report["out"]).metadata_props}
    data = load_checkpoint(checkpoint)
    assert props["agecam.contract_version"] == "1.2" and props["agecam.input_size"] == "64"
    assert props["agecam.backbone"] == "mobilenet_v2" and props["agecam.precision"] == "fp32"
    assert json.loads(props["agecam.valid_metrics"]) == json.loads(json.dumps(data["valid_metrics"]))
    assert len(props["agecam.checkpoint_sha256"]) == 64 and props["agecam.code_version"].startswith("0.")
    assert json.loads(props["agecam.training_data"])["datasets"] == ["tiny-appa0"]


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_every_variant_carries_the_temperature_fitted_on_valid_crops(exported, precision):
    fitted = exported["fp32"]["age_temperature"]
    assert fitted["crops"] == 12 and fitted["nll_fitted"] <= fitted["nll"] + 1e-6  # the fit minimises this NLL
    model = AgeModel(Path(exported[precision]["out"]), ["CPUExecutionProvider"])
    assert model.info.age_temperature == fitted["value"] > 0
    assert exported[precision]["age_temperature"] == fitted  # the same crops, the same deterministic fit


def test_no_temperature_crops_writes_no_temperature(checkpoint, tiny_appa, tmp_path):
    out = tmp_path / "m.onnx"
    report = export_checkpoint(checkpoint, out, "fp32", [str(tiny_appa)], parity_crops=8, temperature_crops=0)
    assert report["age_temperature"] is None
    assert "agecam.age_temperature" not in {p.key for p in onnx.load(out).metadata_props}
    assert AgeModel(out, ["CPUExecutionProvider"]).info.age_temperature == 1.0


def test_fp32_matches_torch_within_five_hundredths_of_a_year(exported):
    parity_report = exported["fp32"]["fp32_parity"]
    assert parity_report["n"] >= 8 and parity_report["max_abs_age_diff"] <= 0.05


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_variants_are_checked_and_marked(exported, precision):
    report = exported[precision]
    model = AgeModel(Path(report["out"]), ["CPUExecutionProvider"])
    assert model.info.metadata["precision"] == precision
    assert report[f"{precision}_parity"]["max_abs_age_diff"] <= PARITY_MAX_ABS[precision]
    assert report[f"{precision}_parity"]["mean_abs_age_diff"] <= PARITY_MEAN_ABS[precision]
    assert report["bytes"] < exported["fp32"]["bytes"] * (0.4 if precision == "int8" else 0.6)


def test_int8_quantizes_the_backbone_end_to_end_and_keeps_its_ends_float(exported):
    """One int8 chain from the third convolution to the head's Gemm (no float Clip/Add round trips, the
    speed of int8 on a CPU), with the in-graph preprocessing, the first two convolutions and the
    softmax/expected-age arithmetic left in float (accuracy, see export/variants.py)."""
    nodes = list(onnx.load(exported["int8"]["out"]).graph.node)
    producer = {output: node.op_type for node in nodes for output in node.output}
    convs = [producer.get(node.input[0]) for node in nodes if node.op_type == "Conv"]
    assert "DequantizeLinear" not in convs[:2] and set(convs[2:]) == {"DequantizeLinear"}
    assert {producer[node.input[0]] for node in nodes if node.op_type in ("Add", "Gemm")} == {"DequantizeLinear"}
    assert not any(node.op_type == "Clip" and producer[node.input[0]] == "DequantizeLinear" for node in nodes)
    softmax = next(i for i, node in enumerate(nodes) if node.op_type == "Softmax")
    assert not {node.op_type for node in nodes[softmax:]} & {"QuantizeLinear", "DequantizeLinear"}


def test_the_edge_replays_a_clip_with_the_exported_model(agecam, exported, write_config, assets):
    config = write_config(age_model={"path": exported["int8"]["out"]})
    result = agecam(
        "--config",
        config,
        "--log-level",
        "WARNING",
        "replay",
        clip(assets, "face-demographics-walking-and-pause"),
        "--fast",
        "--json",
    )
    assert result.code == 0
    summary = result.json()
    assert len(summary["customers"]) == 3 and summary["model"]["precision"] == "int8"
    assert all(0 <= customer["age"] <= 100 for customer in summary["customers"])


def test_missing_checkpoint_is_a_clear_error(agecam, tmp_path):
    result = agecam("export", tmp_path / "nope.pt", "--out", tmp_path / "m.onnx")
    assert result.code == 9 and "nope.pt" in result.err and not (tmp_path / "m.onnx").exists()


def test_not_a_checkpoint_is_a_clear_error(agecam, tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    result = agecam("export", tmp_path / "x.pt", "--out", tmp_path / "m.onnx")
    assert result.code == 9 and "x.pt" in result.err and "Traceback" not in result.err


def test_an_onnx_model_given_as_the_checkpoint_says_what_it_is(agecam, tmp_path):
    bundled = ROOT / "models" / "agecam-mobilenetv2-int8.onnx"
    result = agecam("export", bundled, "--out", tmp_path / "m.onnx")
    assert result.code == 9 and not (tmp_path / "m.onnx").exists()
    assert "is an ONNX model, not a checkpoint" in result.err and f"agecam eval --model {bundled}" in result.err
    assert "train again" not in result.err


class Payload:
    """A pickle that would run code on load: it creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(agecam, tmp_path):
    marker, hostile = tmp_path / "ran", tmp_path / "best.pt"
    torch.save({"format": "agecam-checkpoint", "version": 1, "payload": Payload(marker)}, hostile)
    result = agecam("export", hostile, "--out", tmp_path / "m.onnx")
    assert result.code == 9 and "not a readable agecam checkpoint" in result.err
    assert not marker.exists()


def test_unwritable_output_leaves_nothing(agecam, checkpoint, tmp_path):
    result = agecam("export", checkpoint, "--out", tmp_path / "missing-folder" / "m.onnx")
    assert result.code == 10 and "missing-folder" in result.err
    assert not (tmp_path / "missing-folder").exists()


def test_an_output_that_is_a_folder_is_refused_before_the_export(agecam, checkpoint, tmp_path):
    """Before, the folder was found by the final rename, after the export, its int8 calibration and its checks."""
    (tmp_path / "m.onnx").mkdir()
    result = agecam("export", checkpoint, "--out", tmp_path / "m.onnx", "--precision", "int8")
    assert result.code == 10 and "is a folder" in result.err and result.err.count("\n") == 1
    assert not list((tmp_path / "m.onnx").iterdir())


def test_failed_parity_raises_and_leaves_no_model(checkpoint, tiny_appa, exported, tmp_path):
    data = load_checkpoint(checkpoint)
    crops = valid_crops(data, [str(tiny_appa)], 8)
    ages = AgeModel(Path(exported["fp32"]["out"]), ["CPUExecutionProvider"]).predict(crops)[0]
    assert parity(Path(exported["fp32"]["out"]), ages, crops, "fp32")["max_abs_age_diff"] < 1e-4
    with pytest.raises(ExportError, match="parity check failed"):
        parity(Path(exported["fp32"]["out"]), ages + np.float32(0.2), crops, "fp32")
    with pytest.raises(ExportError, match="on average"):  # int8 is judged on its mean difference
        parity(Path(exported["fp32"]["out"]), ages + np.float32(2.0), crops, "int8")
    assert sorted(p.name for p in Path(exported["fp32"]["out"]).parent.iterdir()) == [
        "age-fp16.onnx",
        "age-fp32.onnx",
        "age-int8.onnx",
    ], "no temporary export folders are left behind"


def test_the_int8_export_command_prints_only_its_json_report(agecam, checkpoint, tiny_appa, tmp_path):
    """ORT's calibrator prints progress; the report on stdout must still parse (scripts read it)."""
    out = tmp_path / "age-int8.onnx"
    argv = ["export", checkpoint, "--out", out, "--precision", "int8", "--data", tiny_appa]
    result = agecam(*argv, "--parity-crops", "12", "--calibration-crops", "12")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["precision"] == "int8" and Path(report["out"]) == out and out.is_file()


@pytest.mark.parametrize("flag", ["--parity-crops", "--calibration-crops"])
def test_no_crops_to_compare_or_calibrate_on_is_a_command_line_error(checkpoint, tiny_appa, tmp_path, capsys, flag):
    # 0 used to reach the int8 export and end in a traceback (nothing to concatenate, no calibration data).
    from edge import cli

    out = tmp_path / "m.onnx"
    argv = ["export", str(checkpoint), "--out", str(out), "--precision", "int8", "--data", str(tiny_appa), flag, "0"]
    with pytest.raises(SystemExit) as exit_:  # argparse's own exit for a bad command line
        cli.main(argv)
    assert exit_.value.code == 2 and f"argument {flag}: must be at least 1 (got 0)" in capsys.readouterr().err
    assert not out.exists()
