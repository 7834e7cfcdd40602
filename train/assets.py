"""Where the trainer finds the face detector (the edge's own lookup) and its crop cache."""

from __future__ import annotations

import os
from pathlib import Path

from edge.config import load_config
from edge.vision.detector import detector_file

DEFAULT_CACHE = "~/.cache/agecam/crops"


def detector_path(config_path: str | None = None) -> Path:
    """The till's detector file: detector.model from the agecam config, else the verified asset."""
    return detector_file(load_config(config_path))


def cache_root(value: str | None = None) -> Path:
    """The crop cache folder: an explicit value, else $AGECAM_CACHE, else ~/.cache/agecam/crops."""
    chosen = value or os.environ.get("AGECAM_CACHE") or DEFAULT_CACHE
    return Path(chosen).expanduser()
