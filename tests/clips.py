"""The sample clips in $AGECAM_ASSETS/videos and how many distinct customers a person counts in each."""

from __future__ import annotations

from pathlib import Path

CLIPS = {
    "face-demographics-walking-and-pause": 3,
    "face-demographics-walking": 2,
    "head-pose-face-detection-female-and-male": 2,
}


def clip(assets: Path, name: str) -> Path:
    return assets / "videos" / f"{name}.gif"
