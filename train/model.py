"""The age network (backbone trunk + tail + head), its losses, and the till-facing wrapper.

Two heads: "l1" regresses the age directly; "dist" (DLDL-v2 style) predicts a distribution over the
integer ages, trained with KL to a Gaussian label plus L1 on its expected value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train.backbones import SPECS, build_blocks

HEADS = ("l1", "dist")
L1_CENTER, L1_SCALE = 35.0, 20.0  # keeps the regression output near unit scale


class AgeNet(nn.Module):
    """Normalised RGB NCHW float in, raw head output out; `decode` turns that into ages."""

    def __init__(
        self,
        backbone: str,
        head: str,
        age_min: int,
        age_max: int,
        cut: int | None = None,
        pretrained: bool = True,
        dropout: float = 0.2,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head_type, self.age_min, self.age_max = backbone, head, age_min, age_max
        self.cut = SPECS[backbone].default_cut if cut is None else cut
        blocks = build_blocks(backbone, pretrained, input_size)
        self.trunk, self.tail = blocks[: self.cut], blocks[self.cut :]
        outputs = 1 if head == "l1" else age_max - age_min + 1
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(SPECS[backbone].features, outputs))
        self.register_buffer("ages", torch.arange(age_min, age_max + 1, dtype=torch.float32))
        # The L1 head has no spread of its own: its age_std is the valid RMSE, set after training.
        self.register_buffer("residual_std", torch.tensor(5.0))

    def pooled(self, trunk_out: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.tail(trunk_out), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(self.trunk(x)))

    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(age, age_std, age_probs or None) from the head output."""
        if self.head_type == "l1":
            age = (out[:, 0] * L1_SCALE + L1_CENTER).clamp(self.age_min, self.age_max)
            return age, self.residual_std.expand_as(age), None
        probs = out.softmax(dim=1)
        age = probs @ self.ages
        std = (probs @ self.ages.square() - age.square()).clamp_min(1e-6).sqrt()
        return age, std, probs

    def loss(self, out: torch.Tensor, age: torch.Tensor, sigma: float, l1_weight: float) -> torch.Tensor:
        if self.head_type == "l1":
            return F.l1_loss(out[:, 0] * L1_SCALE + L1_CENTER, age)
        target = torch.exp(-0.5 * ((self.ages[None, :] - age[:, None]) / sigma) ** 2)
        target = target / target.sum(dim=1, keepdim=True)
        log_probs = out.log_softmax(dim=1)
        kl = F.kl_div(log_probs, target, reduction="batchmean")
        expected = log_probs.exp() @ self.ages
        return kl + l1_weight * F.l1_loss(expected, age)


class Preprocess(nn.Module):
    """uint8 BGR NHWC (the till's crops) to normalised float RGB NCHW, inside the graph.

    mean and std are RGB fractions of 255, the backbone's own (train/backbones.py)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0)

    @classmethod
    def for_backbone(cls, backbone: str) -> Preprocess:
        return cls(SPECS[backbone].mean, SPECS[backbone].std)

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        x = face.permute(0, 3, 1, 2).flip(1).float()  # NHWC BGR -> NCHW RGB
        return (x - self.mean) / self.std


class DeployModel(nn.Module):
    """What the till runs (docs/model-contract.md): uint8 BGR NHWC `face` in; age, age_std, age_probs out."""

    def __init__(self, net: AgeNet, preprocess: Preprocess | None = None) -> None:
        super().__init__()
        self.preprocess, self.net = preprocess or Preprocess.for_backbone(net.backbone), net

    def forward(self, face: torch.Tensor) -> tuple[torch.Tensor, ...]:
        age, std, probs = self.net.decode(self.net(self.preprocess(face)))
        return (age, std) if probs is None else (age, std, probs)
