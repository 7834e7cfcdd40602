"""Training crops made exactly as the till makes them (edge detector + edge crop), cached on disk.

The cache key is the dataset, the file (name and size), the crop spec and the detector (file hash and
settings), so changing any of them makes new crops and a second run recomputes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.vision.detector import FaceDetector, detect_main_face
from edge.vision.faces import CropSpec, crop_face
from train.datasets import BadRow, Dataset, Sample

log = logging.getLogger(__name__)
FACE, NO_FACE, UNREADABLE = "face", "no_face", "unreadable"
DATASET_MIN_FACE_PX = 20  # dataset photos are small tight crops; the till's 40 px would drop faces
# Photos are detected in parallel on a miss: one YuNet per thread (OpenCV releases the GIL while it runs).
CROP_WORKERS = min(8, os.cpu_count() or 1)


@dataclass
class CropStats:
    hits: int = 0
    misses: int = 0
    no_face: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"hits": self.hits, "misses": self.misses, "no_face": self.no_face, "unreadable": self.unreadable}


def whole_photo(image: np.ndarray, spec: CropSpec) -> np.ndarray:
    """The fallback when no face is found: the photo padded square (border repeated) and resized."""
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left, cv2.BORDER_REPLICATE)
    return cv2.resize(square, (spec.size, spec.size), interpolation=cv2.INTER_AREA)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class CropCache:
    """Face crops of dataset photos, one PNG per photo (lossless, so the cache changes nothing)."""

    def __init__(
        self,
        root: Path,
        detector_path: Path,
        spec: CropSpec,
        min_face_px: int = DATASET_MIN_FACE_PX,
        enabled: bool = True,
        workers: int = CROP_WORKERS,
    ) -> None:
        self.root, self.detector_path, self.spec = root, detector_path, spec
        self.min_face_px, self.enabled, self.workers = min_face_px, enabled, max(1, workers)
        self._local, self._built_lock = threading.local(), threading.Lock()
        self.detectors_built = 0
        self.write_failed = False  # warned once: a full disk would otherwise warn for every photo
        self.stats = CropStats()
        self.detector_key = f"yunet{_file_sha(detector_path)}-min{min_face_px}" if detector_path.is_file() else ""

    @property
    def detector(self) -> FaceDetector:
        """This thread's YuNet (it keeps its input size, so threads cannot share one)."""
        detector = getattr(self._local, "detector", None)
        if detector is None:  # built on the first miss: a fully cached run never loads YuNet
            detector = self._local.detector = FaceDetector(self.detector_path, min_face_px=self.min_face_px)
            with self._built_lock:
                self.detectors_built += 1
        return detector

    def _entry(self, ds_key: str, sample: Sample) -> Path:
        spec = f"s{self.spec.size}-m{self.spec.margin:g}-{self.detector_key}"
        size = sample.path.stat().st_size
        return self.root / ds_key / spec / f"{sample.file_name}.{size}"

    def _compute(self, sample: Sample) -> tuple[str, np.ndarray | None]:
        image = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
        if image is None:
            return UNREADABLE, None
        face = detect_main_face(image, self.detector)
        if face is None:
            return NO_FACE, None
        return FACE, crop_face(image, face, self.spec)

    def get(self, ds_key: str, sample: Sample) -> tuple[str, np.ndarray | None]:
        """(status, crop): status is FACE with a crop, or NO_FACE / UNREADABLE with None."""
        status, crop, hit = self._lookup(ds_key, sample)
        self._count(hit)
        return status, crop

    def _count(self, hit: bool) -> None:
        if hit:
            self.stats.hits += 1
        else:
            self.stats.misses += 1

    def _lookup(self, ds_key: str, sample: Sample) -> tuple[str, np.ndarray | None, bool]:
        """(status, crop, read from the cache); safe to call from several threads at once."""
        entry = self._entry(ds_key, sample)
        png, none = entry.with_name(entry.name + ".png"), entry.with_name(entry.name + ".noface")
        if self.enabled and png.is_file():
            crop = cv2.imread(str(png), cv2.IMREAD_COLOR)
            if crop is not None and crop.shape[:2] == (self.spec.size, self.spec.size):
                return FACE, crop, True
        if self.enabled and none.is_file():
            return NO_FACE, None, True
        status, crop = self._compute(sample)
        if self.enabled and status != UNREADABLE:
            self._store(png if crop is not None else none, crop)
        return status, crop, False

    def _store(self, target: Path, crop: np.ndarray | None) -> None:
        """Caches a crop (or a no-face mark); where it cannot be written (a full disk) the run goes on without
        it, as with the trunk outputs, and says so once."""
        tmp = target.with_name(target.name + f".{os.getpid()}-{threading.get_ident()}.tmp" + target.suffix)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if crop is None:
                tmp.touch()
            elif not cv2.imwrite(str(tmp), crop):
                raise OSError(f"OpenCV could not write {tmp.name}")
            os.replace(tmp, target)  # atomic: a killed run never leaves a half-written crop
        except (OSError, cv2.error) as error:
            tmp.unlink(missing_ok=True)
            with self._built_lock:
                if not self.write_failed:
                    log.warning("crop cache %s cannot be written (%s): going on without caching", self.root, error)
                self.write_failed = True

    def crops_for(self, ds: Dataset, samples: list[Sample], desc: str) -> tuple[list[Sample], list[np.ndarray]]:
        """Crops of the samples with a face; photos without one are counted and skipped."""
        kept, crops = [], []
        with ThreadPoolExecutor(self.workers) as pool:
            found = pool.map(lambda sample: self._lookup(ds.key, sample), samples)  # results in the samples' order
            for sample, (status, crop, hit) in tqdm(
                zip(samples, found, strict=True), total=len(samples), desc=desc, unit="photo", leave=False
            ):
                self._count(hit)
                self._keep(ds, sample, status, crop, kept, crops)
        return kept, crops

    def _keep(self, ds: Dataset, sample: Sample, status: str, crop: np.ndarray | None, kept: list, crops: list) -> None:
        """Keep a crop with a face; count (and, if unreadable, report) a photo without one."""
        if status == FACE:
            kept.append(sample)
            crops.append(crop)
            return
        counts = self.stats.no_face if status == NO_FACE else self.stats.unreadable
        counts[ds.name] = counts.get(ds.name, 0) + 1
        if status == UNREADABLE:
            ds.bad_rows.append(BadRow(ds.name, 0, sample.file_name, "image unreadable"))
