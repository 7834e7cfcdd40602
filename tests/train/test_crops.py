"""The crop cache makes the edge's own crops (train/serve parity) and recomputes nothing on a second run."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.assets import DETECTOR_ASSET as DETECTOR_FILE
from edge.vision.detector import FaceDetector, detect_main_face
from edge.vision.faces import DEFAULT_CROP, crop_face
from train.crops import FACE, NO_FACE, CropCache, whole_photo
from train.datasets import load_dataset


def test_crops_match_edge_and_are_cached(assets: Path, tiny_appa: Path, cache_dir: Path) -> None:
    ds = load_dataset(tiny_appa)
    samples = ds.split("valid")[:6]
    cache = CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP)
    kept, crops = cache.crops_for(ds, samples, "test")
    assert cache.stats.misses == 6 and cache.stats.hits == 0 and len(kept) >= 5

    detector = FaceDetector(assets / DETECTOR_FILE, min_face_px=20)
    image = cv2.imread(str(kept[0].path))
    expected = crop_face(image, detect_main_face(image, detector), DEFAULT_CROP)
    assert np.array_equal(crops[0], expected)

    again = CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP)
    kept2, crops2 = again.crops_for(ds, samples, "test")
    assert again.stats.hits == 6 and again.stats.misses == 0
    assert [s.file_name for s in kept2] == [s.file_name for s in kept]
    assert all(np.array_equal(a, b) for a, b in zip(crops, crops2, strict=True))
    assert again.detectors_built == 0  # a fully cached run never loads YuNet


def test_parallel_detection_gives_the_serial_crops_in_order(assets: Path, tiny_appa: Path, cache_dir: Path) -> None:
    ds = load_dataset(tiny_appa)
    samples = ds.samples[:24]
    serial = CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP, enabled=False, workers=1)
    parallel = CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP, enabled=False, workers=4)
    kept1, crops1 = serial.crops_for(ds, samples, "serial")
    kept4, crops4 = parallel.crops_for(ds, samples, "parallel")
    assert [s.file_name for s in kept4] == [s.file_name for s in kept1] and len(kept1) >= 20
    assert all(np.array_equal(a, b) for a, b in zip(crops1, crops4, strict=True))
    assert parallel.stats.as_dict() == serial.stats.as_dict() and parallel.stats.misses == 24
    assert serial.detectors_built == 1 and 1 < parallel.detectors_built <= 4  # one YuNet per working thread


def test_no_face_is_counted_and_cached(assets: Path, tiny_appa: Path, cache_dir: Path, tmp_path: Path) -> None:
    ds = load_dataset(tiny_appa)
    sample = ds.samples[0]
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    blank_sample = type(sample)(ds.name, "blank.jpg", blank, 30.0, "train")
    cache = CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP)
    kept, _ = cache.crops_for(ds, [sample, blank_sample], "test")
    assert [s.file_name for s in kept] == [sample.file_name]
    assert cache.stats.no_face == {ds.name: 1}
    assert cache.get(ds.key, blank_sample) == (NO_FACE, None)
    assert cache.stats.hits == 1
    status, crop = cache.get(ds.key, sample)
    assert status == FACE and crop.shape == (224, 224, 3)
    assert whole_photo(cv2.imread(str(blank)), DEFAULT_CROP).shape == (224, 224, 3)


def test_other_crop_spec_gets_its_own_entries(assets: Path, tiny_appa: Path, cache_dir: Path) -> None:
    from edge.vision.faces import CropSpec

    ds = load_dataset(tiny_appa)
    sample = ds.samples[1]
    CropCache(cache_dir, assets / DETECTOR_FILE, DEFAULT_CROP).get(ds.key, sample)
    small = CropCache(cache_dir, assets / DETECTOR_FILE, CropSpec(112, 0.3))
    status, crop = small.get(ds.key, sample)
    assert small.stats.misses == 1 and crop.shape == (112, 112, 3) and status == FACE
