"""Write a random-weight MobileNetV2 age model (about 0.3 GFLOPs at 224 px) that honours the model
contract, for timing the edge before a trained model exists. Needs the [train] extra (torch).

    python benchmarks/random_mobilenet_onnx.py OUT.onnx [--size 224]
"""

from __future__ import annotations

import argparse

import onnx
import torch
import torchvision

from edge.vision.model_contract import metadata_props


class RandomAgeNet(torch.nn.Module):
    """uint8 BGR NHWC in; age and age_std out (a 101-way distribution head, like a DLDL model)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torchvision.models.mobilenet_v2(weights=None, num_classes=101)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)
        self.register_buffer("ages", torch.arange(101, dtype=torch.float32))

    def forward(self, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = face.permute(0, 3, 1, 2).flip(1).float()
        probs = torch.softmax(self.net((rgb - self.mean) / self.std), dim=1)
        age = probs @ self.ages
        std = torch.sqrt((probs * (self.ages - age[:, None]) ** 2).sum(1))
        return age, std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = RandomAgeNet().eval()
    example = torch.zeros(2, args.size, args.size, 3, dtype=torch.uint8)
    torch.onnx.export(
        model,
        (example,),
        args.out,
        input_names=["face"],
        output_names=["age", "age_std"],
        dynamic_axes={"face": {0: "N"}, "age": {0: "N"}, "age_std": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(args.out)
    onnx.helper.set_model_props(
        proto, metadata_props(args.size, 0.3, 0, 100, backbone="mobilenet_v2-random", precision="fp32")
    )
    onnx.save(proto, args.out)


if __name__ == "__main__":
    main()
