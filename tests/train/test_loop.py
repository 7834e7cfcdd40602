"""Stage 1's pooled features (all views, or the recipe's stage1_views), and stage 2's C-Mixup."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_cmixup_pairs_each_photo_with_batch_mates_of_a_similar_age() -> None:
    mixup = loop.Mixup(alpha=2.0, years=1.0, rng=np.random.default_rng(0))
    ages = torch.tensor([1.0, 2.0, 50.0, 51.0, 90.0])
    pairs, weights = set(), []
    for _ in range(300):
        partner, weight = mixup.draw(ages)
        pairs |= {(i, int(j)) for i, j in enumerate(partner)}
        weights.append(weight)
    # Within a year of each other, either partner; 48 years apart, never; alone in its age, itself.
    assert pairs == {(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (4, 4)}
    assert min(weights) > 0 and max(weights) < 1 and abs(np.mean(weights) - 0.5) < 0.05  # Beta(2, 2)


def _stage2_loss(mixup: loop.Mixup | None) -> tuple[float, torch.Tensor]:
    torch.manual_seed(0)
    net = AgeNet("mobilenet_v2", "dist", 0, 100, cut=14, pretrained=False)
    trunk_out = torch.randn(8, 2, 96, 7, 7).half()
    ages = torch.tensor([3.0, 4.0, 15.0, 16.0, 30.0, 31.0, 70.0, 72.0])
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    settings = loop.EpochSettings(
        ages, optimizer, 8, torch.Generator().manual_seed(0), torch.device("cpu"), 2.0, 0.1, mixup=mixup
    )
    loss = loop.stage2_epoch(net, trunk_out, settings, desc="stage 2")
    return loss, net.head[2].weight.detach().clone()


def test_stage2_mixup_blends_inputs_and_ages_and_is_plain_training_when_every_photo_is_its_own_partner() -> None:
    plain_loss, plain_head = _stage2_loss(None)
    alone_loss, alone_head = _stage2_loss(loop.Mixup(2.0, 1e-3, np.random.default_rng(0)))  # no one that close
    mixed_loss, mixed_head = _stage2_loss(loop.Mixup(2.0, 20.0, np.random.default_rng(0)))  # across the ages
    assert alone_loss == pytest.approx(plain_loss, rel=1e-5) and torch.allclose(alone_head, plain_head, atol=1e-6)
    assert mixed_loss != pytest.approx(plain_loss, rel=1e-4)
    assert not torch.allclose(mixed_head, plain_head, atol=1e-4)
