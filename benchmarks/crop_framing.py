"""How much of each dataset's face crops is the photo, and how much is border repeated past the photo's edge.

The crop covers the face box and a margin on every side (`edge.vision.faces.crop_face`); where that runs past
the photo, the photo's border pixels repeat. Photos cut close around the face (UTKFace's chips) give crops
that are mostly such streaks; photos with context (APPA-REAL's) give almost none, and a till's camera none.
Per dataset's `valid` photos with a face: the mean share of the crop outside the photo, its quartiles, and the
share of crops with more than 1 % outside (left out when no photo has a face). Needs the [train] extra;
never reads a test split.

    python benchmarks/crop_framing.py --data DATASET... > framing.json
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from edge.vision.detector import FaceDetector, detect_main_face
from edge.vision.faces import DEFAULT_CROP, CropSpec, alignment_matrix
from train.assets import detector_path
from train.crops import DATASET_MIN_FACE_PX
from train.datasets import load_dataset


def outside_share(photo: np.ndarray, detector: FaceDetector, spec: CropSpec) -> float | None:
    """The share of the face's crop that lies outside the photo, or None without a face."""
    face = detect_main_face(photo, detector)
    if face is None:
        return None
    inside = np.full(photo.shape[:2], 255, np.uint8)
    mask = cv2.warpAffine(inside, alignment_matrix(face, spec), (spec.size, spec.size), borderValue=0)
    return float((mask < 128).mean())


def dataset_figures(folder: str, detector: FaceDetector, spec: CropSpec) -> dict[str, object]:
    dataset = load_dataset(folder)
    shares = [outside_share(cv2.imread(str(sample.path)), detector, spec) for sample in dataset.split("valid")]
    found = np.array([share for share in shares if share is not None])
    figures: dict[str, object] = {"photos": len(shares), "faces": int(found.size)}
    if found.size:
        figures["outside_mean"] = round(float(found.mean()), 3)
        figures["outside_quartiles"] = np.percentile(found, [25, 50, 75]).round(3).tolist()
        figures["crops_over_1_percent_outside"] = round(float((found > 0.01).mean()), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True)
    args = parser.parse_args()
    detector = FaceDetector(detector_path(None), min_face_px=DATASET_MIN_FACE_PX)
    report = {"split": "valid", "margin": DEFAULT_CROP.margin}
    report |= {folder: dataset_figures(folder, detector, DEFAULT_CROP) for folder in args.data}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
