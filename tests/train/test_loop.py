"""Stage 1's pooled features: all views, or only the first few (the recipe's stage1_views)."""

from __future__ import annotations

import torch

from train import loop
from train.model import AgeNet


def test_pooled_features_of_the_first_views_match_all_views() -> None:
    torch.manual_seed(0)
    net = AgeNet("mobilenet_v2", "dist", 0, 100, cut=14, pretrained=False).eval()
    trunk_out = torch.randn(5, 3, 96, 7, 7).half()  # [photos, views, C, H, W] as the trunk cache holds them
    every = loop.pooled_features(net, trunk_out, torch.device("cpu"), "pool", batch_size=2)
    first = loop.pooled_features(net, trunk_out, torch.device("cpu"), "pool", views=1, batch_size=2)
    assert every.shape == (5, 3, 1280) and first.shape == (5, 1, 1280)
    assert torch.allclose(first[:, 0], every[:, 0], atol=1e-5)
    assert not torch.allclose(every[:, 1], every[:, 0])  # each view was pooled from its own trunk output
    direct = net.pooled(trunk_out[3:5, 2].float())
    assert torch.allclose(every[3:5, 2], direct, atol=1e-5)
