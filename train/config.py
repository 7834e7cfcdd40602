"""The training recipe: a validated pydantic model, read from YAML and overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from train.augment import Profile
from train.datasets import AGE_MAX, AGE_MIN
from train.errors import TrainError

Positive = Annotated[float, Field(gt=0)]
# The registry's names (train/backbones.py SPECS), here so the CLI can list them without importing torch.
Backbone = Literal["mobilenet_v2", "resnet50", "efficientnet_lite0", "efficientnet_lite2"]
BACKBONES: tuple[str, ...] = get_args(Backbone)


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # an infinite lr trains NaN weights
    epochs: Annotated[int, Field(ge=0)]
    lr: Positive
    batch_size: Annotated[int, Field(ge=2)] = 64
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4


class TrainConfig(BaseModel):
    """Defaults are the CPU recipe: MobileNetV2, 224 px aligned crops, distribution head, two stages."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    # One folder under runs_dir: "" or "../x" would write the run beside or outside it.
    name: str = "mobilenet_v2-dist"
    data: list[str] = Field(default_factory=list)
    select_on: str | None = None  # dataset whose valid MAE picks the best epoch; default: the first
    # Cross-dataset runs: these datasets' train photos are left out; their valid photos are still scored.
    holdout: list[str] = Field(default_factory=list)
    # best: the epoch with the best valid MAE; last: the final (weight-averaged) epoch, chosen by a fixed
    # schedule and not by valid, so valid stays an honest estimate (issue #13).
    keep: Literal["best", "last"] = "best"
    backbone: Backbone = "mobilenet_v2"
    head: Literal["l1", "dist"] = "dist"
    cut: Annotated[int, Field(ge=0)] | None = None  # first block stage 2 unfreezes; default per backbone
    # The labels' own range (train/datasets.py); age_min < age_max is checked below.
    age_min: Annotated[int, Field(ge=AGE_MIN, le=AGE_MAX)] = 0
    age_max: Annotated[int, Field(ge=AGE_MIN, le=AGE_MAX)] = 100
    crop_size: Annotated[int, Field(ge=32, le=512)] | None = None  # default: the backbone's input size
    crop_margin: Annotated[float, Field(ge=0, le=2)] = 0.3
    views: Annotated[int, Field(ge=1, le=32)] = 4  # cached views per training photo: 1 clean + augmented
    augment: Profile = "till"  # train/augment.py: the till camera, or with looks of unseen datasets
    # Age balancing: each epoch samples photos with weight (photos in their 5-year age bin)^-balance;
    # 0 is uniform, 1 every bin equally often (children, teens and 60+ are rare in both datasets).
    balance: Annotated[float, Field(ge=0, le=1)] = 0.0
    # C-Mixup (Yao et al., NeurIPS 2022) in stage 2: each batch's trunk outputs are blended with those of
    # batch-mates of a similar age (drawn with weight exp(-(age difference / mixup_years)^2 / 2)), and the
    # loss with both ages, at a blend weight drawn from Beta(mixup, mixup) per batch; 0 is off.
    mixup: Annotated[float, Field(ge=0)] = 0.0
    mixup_years: Positive = 5.0
    sigma: Positive = 2.0  # label distribution width (years) for the dist head
    l1_weight: Annotated[float, Field(ge=0)] = 0.1
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.2
    # Stage 1 only initialises the head; pooling one view per photo keeps it cheap when the tail is long.
    stage1_views: Annotated[int, Field(ge=1)] | None = 1  # None: all views
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.998  # stage 2 weight average, decay per step; 0: off
    stage1: StageConfig = Field(default_factory=lambda: StageConfig(epochs=15, lr=1e-3, batch_size=128))
    stage2: StageConfig = Field(default_factory=lambda: StageConfig(epochs=8, lr=6e-4, batch_size=64))
    max_per_split: Annotated[int, Field(ge=1)] | None = None  # for tiny runs: first N photos per split
    valid_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0  # numpy's seed range
    threads: Annotated[int, Field(ge=0)] = 0  # 0: torch's default
    # torch.device names; anything else would only fail, with a traceback, after the crops were made
    device: Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")] = "auto"
    runs_dir: str = "runs"
    cache_dir: str | None = None
    feature_cache: bool = True  # keep the training views' trunk outputs next to the crop cache

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        if name.strip(".") == "" or "/" in name or "\\" in name:
            raise ValueError("must be one folder name, without / or \\, and not . or ..")
        return name

    @model_validator(mode="after")
    def _ages_are_a_range(self) -> TrainConfig:
        if self.age_min >= self.age_max:  # the distribution head needs at least two ages
            raise ValueError(f"age_min ({self.age_min}) must be below age_max ({self.age_max})")
        return self


def load_recipe(path: str | None, overrides: dict[str, object]) -> TrainConfig:
    """A recipe file (YAML) if given, with CLI overrides (None values ignored) on top."""
    data: dict[str, object] = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise TrainError(f"{path}: cannot read the recipe ({type(error).__name__}): check the file") from None
        if not isinstance(data, dict):
            raise TrainError(f"{path}: the recipe must be a mapping of settings")
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not key:  # a check across settings (_ages_are_a_range): its message names them
            raise TrainError(f"{path or 'recipe'}: {message}") from None
        raise TrainError(f"{path or 'recipe'}: {key}: {message} (got {first.get('input')!r})") from None
