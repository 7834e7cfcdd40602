"""`agecam train`: crops, cached trunk outputs, stage 1 (head) and stage 2 (later blocks); keeps the best valid
epoch or the last (cfg.keep)."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from edge.vision.faces import CropSpec
from train import loop
from train.assets import cache_root, detector_path
from train.atomic import write_text_atomic
from train.augment import AUGMENT_VERSION
from train.backbones import SPECS
from train.checkpoint import describe_net, load_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.crops import CropCache
from train.errors import TrainError
from train.features import TrainViews, trunk_outputs, trunk_outputs_per_dataset
from train.metrics import age_metrics
from train.model import AgeNet, Preprocess
from train.result_files import check_creatable, output_folder, write_run_report
from train.splits import load_splits

log = logging.getLogger(__name__)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():  # else a traceback once the crops are made
        raise TrainError(f"device {name!r}: this machine has no CUDA GPU that torch can use: set device auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise TrainError("device 'mps': this torch or machine has no Apple GPU: set device auto or cpu")
    return torch.device(name)


class Trainer:
    def __init__(self, cfg: TrainConfig, config_path: str | None, resume: bool) -> None:
        self.cfg, self.resume = cfg, resume
        if cfg.crop_size is None:  # the backbone's own input size (recorded in config.yaml and the checkpoint)
            cfg.crop_size = SPECS[cfg.backbone].input_size
        self.run_dir = Path(cfg.runs_dir) / cfg.name
        if (self.run_dir / "last.pt").exists() and not resume:
            raise TrainError(f"run {self.run_dir} exists: pass --resume to continue it or choose another --name")
        if resume and not (self.run_dir / "last.pt").exists():
            raise TrainError(f"cannot resume: {self.run_dir / 'last.pt'} not found: start the run without --resume")
        check_creatable(self.run_dir)  # now, not after the crops and trunk outputs
        self.spec = CropSpec(cfg.crop_size, cfg.crop_margin)
        self.cache = CropCache(cache_root(cfg.cache_dir), detector_path(config_path), self.spec)
        self.device = _device(cfg.device)
        self.history: list[dict] = []
        self.best = {"mae": float("inf"), "stage": 0, "epoch": 0}
        self.timings: dict[str, float] = {}
        self.ema: AveragedModel | None = None  # stage 2's weight average, when cfg.ema is set

    def _reported(self) -> nn.Module:
        """The weights that are evaluated and saved: the average once stage 2 keeps one."""
        return self.ema.module if self.ema is not None else self.net

    def _timed(self, key: str, start: float) -> None:
        self.timings[key] = round(self.timings.get(key, 0.0) + time.time() - start, 1)

    def _prepare(self) -> None:
        start = time.time()
        self.datasets, self.train, self.valid = load_splits(self.cfg, self.cache)
        self.select = self.cfg.select_on or next(iter(self.valid))
        if self.select not in self.valid:
            raise TrainError(f"select_on {self.select!r} is not a dataset with valid photos: {sorted(self.valid)}")
        self._timed("crops_s", start)
        start = time.time()
        self.net = AgeNet(
            self.cfg.backbone,
            self.cfg.head,
            self.cfg.age_min,
            self.cfg.age_max,
            self.cfg.cut,
            pretrained=True,
            dropout=self.cfg.dropout,
            input_size=self.spec.size,
        ).to(self.device)
        trunk, front = self.net.trunk.eval(), Preprocess.for_backbone(self.cfg.backbone)
        views = TrainViews(self.cfg.views, self.cfg.seed, self.cfg.augment)
        cache_dir = self.cache.root / "trunk" if self.cfg.feature_cache else None
        self.train.trunk, self.trunk_cache = trunk_outputs_per_dataset(
            trunk, front, self.train.samples, self.train.crops, views, self.device, cache_dir, self._trunk_key()
        )
        for name, split in self.valid.items():
            split.trunk = trunk_outputs(trunk, front, split.crops, 1, self.cfg.seed, self.device, f"trunk {name}")
        self.train.crops = []  # the trunk outputs replace them; free the memory
        self._timed("features_s", start)

    def _trunk_key(self) -> dict[str, object]:
        """All the training views' trunk outputs depend on, but the photos (added per dataset)."""
        return {
            "backbone": self.cfg.backbone,
            "cut": self.net.cut,
            "views": self.cfg.views,
            "seed": self.cfg.seed,
            "crop": [self.spec.size, self.spec.margin],
            "detector": self.cache.detector_key,
            "augment": [AUGMENT_VERSION, self.cfg.augment],
        }

    def _evaluate(self, pooled: dict[str, torch.Tensor] | None) -> dict[str, float]:
        maes = {}
        for name, split in self.valid.items():
            pred, _ = loop.predict(self._reported(), split.trunk, self.device, pooled[name] if pooled else None)
            maes[name] = float(np.abs(pred - split.ages.numpy()).mean())
        return maes

    def _checkpoint(self, stage: int, epoch: int, maes: dict[str, float]) -> dict[str, object]:
        return {
            **describe_net(self.net, self.spec, self.cfg.dropout),
            "detector": self.cache.detector_key,
            "state_dict": self._reported().state_dict(),
            "valid_metrics": {"mae": maes},
            "config": self.cfg.model_dump(),
            "stage": stage,
            "epoch": epoch,
            "history": self.history,
        }

    def _end_epoch(
        self,
        stage: int,
        epoch: int,
        loss: float,
        maes: dict[str, float],
        seconds: float,
        optimizer: torch.optim.Optimizer,
        scheduler: object,
    ) -> None:
        self.history.append(
            {"stage": stage, "epoch": epoch, "train_loss": loss, "valid_mae": maes, "seconds": round(seconds, 1)}
        )
        log.info(
            "stage %d epoch %d: loss %.4f, valid MAE %s (%.0f s)",
            stage,
            epoch,
            loss,
            ", ".join(f"{k} {v:.2f}" for k, v in maes.items()),
            seconds,
        )
        loop.check_finite(stage, epoch, loss, maes)  # before the save: last.pt keeps the last good epoch
        data = self._checkpoint(stage, epoch, maes)
        if self.cfg.keep == "last" or maes[self.select] < self.best["mae"]:
            self.best = {"mae": maes[self.select], "stage": stage, "epoch": epoch}
            save_checkpoint(self.run_dir / "best.pt", data)
        resume = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "best": self.best}
        if self.ema is not None:  # resuming needs the raw weights and the average's state
            resume.update(train_state_dict=self.net.state_dict(), ema=self.ema.state_dict())
        save_checkpoint(self.run_dir / "last.pt", {**data, **resume})

    def _stage(self, stage: int, done: int, state: dict | None) -> None:
        scfg = self.cfg.stage1 if stage == 1 else self.cfg.stage2
        if done >= scfg.epochs:
            return
        modules = [self.net.head] if stage == 1 else [self.net.tail, self.net.head]
        params = [p for module in modules for p in module.parameters()]
        optimizer = torch.optim.AdamW(params, lr=scfg.lr, weight_decay=scfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=scfg.epochs)
        if state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        after_step = self._start_average(state) if stage == 2 else None
        start = time.time()
        pooled, valid_pooled = self._stage1_features() if stage == 1 else (None, None)
        ages = self.train.ages
        weights = loop.balanced_weights(ages, self.cfg.balance)
        for epoch in range(done + 1, scfg.epochs + 1):
            generator = torch.Generator().manual_seed(self.cfg.seed * 1000 + stage * 100 + epoch)
            settings = loop.EpochSettings(
                ages,
                optimizer,
                scfg.batch_size,
                generator,
                self.device,
                self.cfg.sigma,
                self.cfg.l1_weight,
                after_step,
                weights,
                self._mixup(stage, epoch),
            )
            if stage == 1:
                loss = loop.stage1_epoch(self.net, pooled, settings)
            else:
                loss = loop.stage2_epoch(self.net, self.train.trunk, settings, desc=f"stage 2 epoch {epoch}")
            scheduler.step()
            self._end_epoch(stage, epoch, loss, self._evaluate(valid_pooled), time.time() - start, optimizer, scheduler)
            self._timed(f"stage{stage}_s", start)
            start = time.time()

    def _mixup(self, stage: int, epoch: int) -> loop.Mixup | None:
        """Stage 2's C-Mixup draws for an epoch, seeded per epoch so that --resume draws the same."""
        if stage != 2 or not self.cfg.mixup:
            return None
        rng = np.random.default_rng([self.cfg.seed, stage, epoch])
        return loop.Mixup(self.cfg.mixup, self.cfg.mixup_years, rng)

    def _start_average(self, state: dict | None) -> Callable[[], None] | None:
        """Stage 2's weight average (cfg.ema), restored on --resume; returns its per-step update, or None."""
        if not self.cfg.ema:
            return None
        ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(self.cfg.ema), use_buffers=True)
        if state and "ema" in state:
            ema.load_state_dict(state["ema"])
        self.ema = ema
        return lambda: ema.update_parameters(self.net)

    def _stage1_features(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The frozen tail's pooled features: the first stage1_views of each training photo, and valid."""
        train = loop.pooled_features(self.net, self.train.trunk, self.device, "pool train", self.cfg.stage1_views)
        valid = {n: loop.pooled_features(self.net, s.trunk, self.device, f"pool {n}") for n, s in self.valid.items()}
        return train, valid

    def _restore(self) -> tuple[int, int, dict | None]:
        """(stage, epochs done in it, optimizer state) from last.pt, or a fresh start."""
        if not self.resume:
            return 1, 0, None
        data = load_checkpoint(self.run_dir / "last.pt")
        try:
            self.net.load_state_dict(data.get("train_state_dict", data["state_dict"]))
        except RuntimeError:
            raise TrainError(
                f"{self.run_dir / 'last.pt'} does not match this recipe (backbone, head or cut changed): "
                "resume with the run's config.yaml as --recipe"
            ) from None
        self.history, self.best = data["history"], data["best"]
        log.info("resuming %s after stage %d epoch %d", self.run_dir, data["stage"], data["epoch"])
        return data["stage"], data["epoch"], data

    def run(self) -> dict[str, object]:
        started = time.time()
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        random.seed(self.cfg.seed)
        np.random.seed(self.cfg.seed)
        torch.manual_seed(self.cfg.seed)
        if self.cfg.cut is None:  # record the cut, so a later default cannot break --resume
            last = load_checkpoint(self.run_dir / "last.pt") if self.resume else {}
            self.cfg.cut = last.get("cut", SPECS[self.cfg.backbone].default_cut)
        self._prepare()
        # Only now that the data loaded: a run that fails on its input leaves no runs/NAME behind.
        output_folder(self.run_dir)
        write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(self.cfg.model_dump(), sort_keys=False))
        stage, done, state = self._restore()
        if stage == 1:
            self._stage(1, done, state)
            stage, done, state = 2, 0, None
        self._stage(2, done, state)
        if not self.history:
            raise TrainError("no epochs to train: set stage1.epochs or stage2.epochs above 0")
        self.timings["total_s"] = round(time.time() - started, 1)
        return self._finish()

    def _finish(self) -> dict[str, object]:
        best = load_checkpoint(self.run_dir / "best.pt")
        self.net.load_state_dict(best["state_dict"])
        select = self.valid[self.select]
        pred, _ = loop.predict(self.net, select.trunk, self.device)
        rmse = float(np.sqrt(np.mean((pred - select.ages.numpy()) ** 2)))
        if self.net.head_type == "l1":  # its age_std is the valid RMSE
            self.net.residual_std.fill_(rmse)
            best["state_dict"] = self.net.state_dict()
        valid_metrics = {}
        predictions = {}
        for name, split in self.valid.items():
            pred, std = loop.predict(self.net, split.trunk, self.device)
            valid_metrics[name] = age_metrics(split.ages.numpy(), pred)
            predictions[name] = (split.samples, pred, std)
        best["valid_metrics"] = valid_metrics
        save_checkpoint(self.run_dir / "best.pt", best)
        metrics = {
            "run": str(self.run_dir),
            "best": self.best,
            "kept": self.cfg.keep,
            "valid": valid_metrics,
            "history": self.history,
            "timings": self.timings,
            "crop_cache": self.cache.stats.as_dict(),
            "trunk_cache": self.trunk_cache,
            "datasets": {
                ds.name: {"layout": ds.layout, "photos": len(ds.samples), "bad_rows": len(ds.bad_rows)}
                for ds in self.datasets
            },
            "train_photos": len(self.train.samples),
            "device": str(self.device),
        }
        write_run_report(self.run_dir, metrics, predictions, self.datasets)
        # Atomic: `agecam candidates` reads a run whose metrics.json exists instead of training it again.
        write_text_atomic(self.run_dir / "metrics.json", json.dumps(metrics, indent=2))
        return metrics
