"""ImageNet backbones through torchvision's model and weights API, split into a frozen trunk and a tail.

The tail is the later blocks that stage 2 unfreezes; stage 1 and stage 2 both train on cached trunk
outputs, which is what makes the recipe fit a CPU budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torchvision import models

from train.errors import TrainError

# torchvision's ImageNet weights expect RGB in [0, 1] normalised with these.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    features: int  # channels of the last block (the head's input)
    default_cut: int  # index of the first block stage 2 unfreezes


SPECS = {
    "mobilenet_v2": BackboneSpec(1280, 4),  # blocks 4-18 (28x28 px and below): docs/training.md
    "resnet50": BackboneSpec(2048, 4),  # layer4
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


def build_blocks(name: str, pretrained: bool) -> nn.Sequential:
    """The backbone's convolutional blocks as one Sequential, with ImageNet weights if pretrained.

    pretrained=False gives the architecture only, for rebuilding a model from a checkpoint.
    """
    if name not in SPECS:
        raise TrainError(f"unknown backbone {name!r}: choose one of {', '.join(SPECS)}")
    constructor = getattr(models, name)
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
