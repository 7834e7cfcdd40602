"""The checkpoint format, and rebuilding a model from one (what export calls).

A checkpoint is a dict saved with torch.save, holding everything needed to rebuild the network
without ImageNet weights or the training code's config:

    format, version, backbone, head, age_min, age_max, cut, dropout,
    crop {size, margin}, normalisation {colour, scale, mean, std}, detector,
    state_dict, valid_metrics, config, stage, epoch, history
    (+ optimizer, scheduler, best in last.pt, for --resume)
"""

from __future__ import annotations

from pathlib import Path

import torch

from edge.vision.faces import CropSpec
from train.atomic import write_atomic
from train.backbones import MEAN, SPECS, STD
from train.errors import TrainError
from train.model import AgeNet, DeployModel, Preprocess

FORMAT, VERSION = "agecam-checkpoint", 1


def describe_net(net: AgeNet, crop: CropSpec, dropout: float) -> dict[str, object]:
    """The architecture part of a checkpoint."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "backbone": net.backbone,
        "head": net.head_type,
        "age_min": net.age_min,
        "age_max": net.age_max,
        "cut": net.cut,
        "dropout": dropout,
        "crop": {"size": crop.size, "margin": crop.margin},
        "normalisation": {
            "colour": "RGB",
            "scale": 1 / 255,
            "mean": list(SPECS[net.backbone].mean),
            "std": list(SPECS[net.backbone].std),
        },
    }


def save_checkpoint(path: Path, data: dict[str, object]) -> None:
    """Atomic: an interrupted save or a full disk never corrupts the last good checkpoint."""
    write_atomic(path, lambda tmp: _torch_save(data, tmp))


def _torch_save(data: dict[str, object], path: Path) -> None:
    try:
        torch.save(data, path)
    except RuntimeError as error:  # torch reports a failed write (a full disk) as a RuntimeError
        raise OSError(f"torch.save failed: {error}") from None


def load_checkpoint(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"checkpoint not found: {path}: give a runs/NAME/best.pt file")
    if path.suffix.lower() == ".onnx":
        raise TrainError(
            f"{path} is an ONNX model, not a checkpoint: 'agecam eval --model {path}' scores it and "
            "age_model.path runs it; export and --resume take a runs/NAME/best.pt or last.pt"
        )
    try:
        # weights_only: a checkpoint is tensors, numbers, strings and containers; a user-supplied file is
        # never allowed to run code while it loads (pickle could).
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for a bad file
        raise TrainError(
            f"{path}: not a readable agecam checkpoint ({type(error).__name__}): give a runs/NAME/best.pt "
            "written by agecam train"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TrainError(f"{path}: not an agecam checkpoint: give a runs/NAME/best.pt file")
    if data.get("version") != VERSION:
        raise TrainError(f"{path}: checkpoint version {data.get('version')} is not supported (this reads {VERSION})")
    return data


def build_model(data: dict) -> AgeNet:
    """The network described by a checkpoint dict, with its trained weights, in eval mode."""
    net = AgeNet(
        data["backbone"],
        data["head"],
        data["age_min"],
        data["age_max"],
        data["cut"],
        pretrained=False,
        dropout=data.get("dropout", 0.2),
        input_size=int(data["crop"]["size"]),
    )
    net.load_state_dict(data["state_dict"])
    return net.eval()


def crop_spec(data: dict) -> CropSpec:
    return CropSpec(int(data["crop"]["size"]), float(data["crop"]["margin"]))


def load_deploy_model(path: Path | str) -> tuple[DeployModel, dict]:
    """For export and eval: the till-facing model (uint8 BGR NHWC in; age, age_std[, age_probs] out)
    and the checkpoint dict (crop spec, ages, backbone and valid metrics for the ONNX metadata)."""
    data = load_checkpoint(path)
    return DeployModel(build_model(data), preprocess(data)).eval(), data


def preprocess(data: dict) -> Preprocess:
    """The input normalisation the checkpoint was trained with (ImageNet's where it predates the field)."""
    norm = data.get("normalisation", {})
    return Preprocess(tuple(norm.get("mean", MEAN)), tuple(norm.get("std", STD)))
