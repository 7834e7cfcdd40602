"""Trunk outputs per dataset: one preallocated tensor, a cache file per dataset that holds its part
alone, and the same outputs whether computed, read back or recomputed after a torn file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edge.assets import DETECTOR_ASSET as DETECTOR_FILE
from edge.vision.faces import DEFAULT_CROP
from train.backbones import build_blocks
from train.crops import CropCache
from train.datasets import load_dataset
from train.features import TrainViews, trunk_outputs_per_dataset
from train.model import Preprocess

KEY = {"backbone": "mobilenet_v2", "cut": 4}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trunk(assets: Path) -> tuple[torch.nn.Module, Preprocess]:
    """MobileNetV2's ImageNet blocks 0-3 (the default cut) and its input normalisation."""
    return build_blocks("mobilenet_v2", pretrained=True)[:4].eval(), Preprocess.for_backbone("mobilenet_v2")


def _train_crops(assets: Path, cache_dir: Path, folders: list[Path]) -> tuple[list, list[np.ndarray]]:
    cache = CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP)
    samples, crops = [], []
    for folder in folders:
        dataset = load_dataset(folder)
        kept, part = cache.crops_for(dataset, dataset.split("train"), "test")
        samples += kept
        crops += part
    return samples, crops


def test_trunk_outputs_are_cached_per_dataset_and_read_back_equal(
    assets: Path, trunk, tiny_appa: Path, small_utk: Path, cache_dir: Path
) -> None:
    samples, crops = _train_crops(assets, cache_dir, [tiny_appa, small_utk])
    views, store = TrainViews(2, seed=0), cache_dir / "trunk"

    def outputs(folder: Path | None) -> tuple[torch.Tensor, str]:
        return trunk_outputs_per_dataset(*trunk, samples, crops, views, CPU, folder, KEY)

    computed, state = outputs(store)
    assert state == "miss" and computed.shape == (len(crops), 2, 24, 56, 56) and computed.dtype == torch.float16
    files = sorted(store.glob("*.npy"), key=lambda file: file.stat().st_size)
    per_photo = computed[0].numel() * 2  # float16 bytes
    appa = sum(sample.dataset == load_dataset(tiny_appa).name for sample in samples)
    # Each file holds its own dataset's part, not the whole tensor it was a slice of (as torch.save would).
    assert [file.stat().st_size // per_photo for file in files] == sorted([appa, len(crops) - appa])
    read, state = outputs(store)
    assert state == "hit" and torch.equal(read, computed)
    assert outputs(None)[1] == "off" and torch.equal(outputs(None)[0], computed)

    torn, whole = files[0], files[0].stat().st_size
    torn.write_bytes(torn.read_bytes()[: whole // 2])  # a run killed while writing
    again, state = outputs(store)
    assert state == "partial" and torch.equal(again, computed)
    assert torn.stat().st_size == whole and not list(store.glob("*.tmp"))  # recomputed and written whole


def test_a_cache_that_cannot_be_written_costs_no_outputs(
    assets: Path, trunk, tiny_appa: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    samples, crops = _train_crops(assets, cache_dir, [tiny_appa])
    views, blocked = TrainViews(1, seed=0), cache_dir / "trunk"
    blocked.write_text("a file where the cache folder should be")
    outputs, state = trunk_outputs_per_dataset(*trunk, samples, crops, views, CPU, blocked, KEY)
    expected, _ = trunk_outputs_per_dataset(*trunk, samples, crops, views, CPU, None, KEY)
    assert state == "miss" and torch.equal(outputs, expected)
    assert "trunk outputs not cached" in caplog.text and blocked.is_file()
