"""One epoch of each training stage, and prediction, all on cached trunk outputs.

Stage 1 trains the head on pooled features of the frozen tail; stage 2 trains tail and head, optionally on
C-Mixup blends of similar-aged photos.
Each epoch draws one random cached view per photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from train.backbones import SPECS
from train.errors import TrainError
from train.model import AgeNet


class Blend(NamedTuple):
    """One batch's C-Mixup: each photo's partner within the batch, and the weight of the photo itself."""

    partner: torch.Tensor
    weight: float

    def mix(self, own: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        """The same blend for inputs and for losses."""
        return self.weight * own + (1 - self.weight) * partners


@dataclass(frozen=True)
class Mixup:
    """C-Mixup's draws for one epoch: a similar-aged partner for each photo of a batch, and a blend weight."""

    alpha: float
    years: float
    rng: np.random.Generator

    def draw(self, ages: torch.Tensor) -> Blend:
        """A partner within the batch for each photo, and the blend weight."""
        a = ages.double().numpy()
        kernel = np.exp(-0.5 * ((a[:, None] - a[None, :]) / self.years) ** 2)  # the photo itself weighs 1
        cumulative = np.cumsum(kernel / kernel.sum(axis=1, keepdims=True), axis=1)
        picks = (cumulative < self.rng.random((len(a), 1))).sum(axis=1).clip(max=len(a) - 1)
        return Blend(torch.from_numpy(picks), float(self.rng.beta(self.alpha, self.alpha)))


@dataclass(frozen=True)
class EpochSettings:
    """What both stages' epochs share: the labels, the optimiser, batching and the loss's knobs."""

    ages: torch.Tensor
    optimizer: torch.optim.Optimizer
    batch_size: int
    generator: torch.Generator
    device: torch.device
    sigma: float
    l1_weight: float
    after_step: Callable[[], None] | None = None  # e.g. updating a weight average
    weights: torch.Tensor | None = None  # per-photo sampling weights (age balancing); None: each photo once
    mixup: Mixup | None = None  # stage 2 only

    def batches(self, n: int) -> list[torch.Tensor]:
        """One epoch's batches of photo indices: a permutation, or n weighted draws with replacement."""
        if self.weights is None:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.multinomial(self.weights, n, replacement=True, generator=self.generator)
        return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]

    def step(self, net: AgeNet, out: torch.Tensor, index: torch.Tensor, blend: Blend | None = None) -> float:
        """One optimisation step on a batch, its inputs blended with `blend`'s partners if given (mixup);
        returns the batch loss times its size."""
        ages = self.ages[index].to(self.device)
        loss = net.loss(out, ages, self.sigma, self.l1_weight)
        if blend is not None:
            loss = blend.mix(loss, net.loss(out, ages[blend.partner], self.sigma, self.l1_weight))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.after_step is not None:
            self.after_step()
        return loss.item() * len(index)


def check_finite(stage: int, epoch: int, loss: float, maes: dict[str, float]) -> None:
    """TrainError for an epoch that diverged: a NaN valid MAE never beats the best one, so the run would go on
    to its end and then find no best.pt."""
    if not np.isfinite([loss, *maes.values()]).all():
        shown = ", ".join(f"{name} {mae}" for name, mae in maes.items())
        raise TrainError(
            f"stage {stage} epoch {epoch}: training diverged (loss {loss}, valid MAE {shown}): lower "
            f"stage{stage}.lr, or set age_min/age_max to cover every label"
        )


def balanced_weights(ages: torch.Tensor, balance: float, bin_years: int = 5) -> torch.Tensor | None:
    """Sampling weights (photos in the age's bin)^-balance, mean 1; None for balance 0 (uniform)."""
    if balance <= 0:
        return None
    bins = (ages // bin_years).long()
    counts = torch.bincount(bins).float()
    weights = counts[bins] ** -balance
    return weights / weights.mean()


def pooled_features(
    net: AgeNet,
    trunk_out: torch.Tensor,
    device: torch.device,
    desc: str,
    views: int | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """float32 [N, views, F]: the frozen tail's pooled output for the first `views` cached views (default all)."""
    n, views = trunk_out.shape[0], min(views or trunk_out.shape[1], trunk_out.shape[1])
    jobs = [(v, start) for v in range(views) for start in range(0, n, batch_size)]
    result = torch.empty((n, views, SPECS[net.backbone].features))
    net.tail.eval()
    with torch.no_grad():
        for v, start in tqdm(jobs, desc=desc, unit="batch", leave=False):
            x = trunk_out[start : start + batch_size, v].to(device).float()
            result[start : start + batch_size, v] = net.pooled(x).cpu()
    return result


def _pick_views(n: int, views: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, views, (n,), generator=generator)


def stage1_epoch(net: AgeNet, pooled: torch.Tensor, epoch: EpochSettings) -> float:
    """Train the head on pooled features; returns the mean training loss."""
    net.head.train()
    chosen = pooled[torch.arange(len(pooled)), _pick_views(len(pooled), pooled.shape[1], epoch.generator)]
    total = 0.0
    for index in epoch.batches(len(chosen)):
        total += epoch.step(net, net.head(chosen[index].to(epoch.device)), index)
    return total / len(chosen)


def stage2_epoch(net: AgeNet, trunk_out: torch.Tensor, epoch: EpochSettings, desc: str) -> float:
    """Train tail and head on cached trunk outputs; returns the mean training loss."""
    net.tail.train()
    net.head.train()
    view_of = _pick_views(len(trunk_out), trunk_out.shape[1], epoch.generator)
    total = 0.0
    batches = epoch.batches(len(trunk_out))
    for index in tqdm(batches, desc=desc, unit="batch", leave=False):
        if len(index) < 2:  # BatchNorm cannot train on a single sample
            continue
        x = trunk_out[index, view_of[index]].to(epoch.device).float()
        blend = None if epoch.mixup is None else epoch.mixup.draw(epoch.ages[index])
        if blend is not None:
            x = blend.mix(x, x[blend.partner.to(epoch.device)])
        total += epoch.step(net, net.head(net.pooled(x)), index, blend)
    return total / len(trunk_out)


def predict(
    net: AgeNet,
    trunk_out: torch.Tensor,
    device: torch.device,
    pooled: torch.Tensor | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Ages and stds for the clean view (view 0) of each photo, from pooled features if given."""
    net.eval()
    ages, stds = [], []
    with torch.no_grad():
        for start in range(0, len(trunk_out), batch_size):
            if pooled is not None:
                features = pooled[start : start + batch_size, 0].to(device)
            else:
                features = net.pooled(trunk_out[start : start + batch_size, 0].to(device).float())
            age, std, _ = net.decode(net.head(features))
            ages.append(age.cpu())
            stds.append(std.cpu())
    return torch.cat(ages).numpy(), torch.cat(stds).numpy()
