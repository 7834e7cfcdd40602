"""Where the trainer finds the face detector and its crop cache: settings and env vars, never fixed paths."""

from __future__ import annotations

import os
from pathlib import Path

from edge.config import load_config
from edge.errors import DetectorError

DETECTOR_FILE = "models/face_detection_yunet_2026may.onnx"
DEFAULT_CACHE = "~/.cache/agecam/crops"


def assets_root() -> Path | None:
    """$AGECAM_ASSETS as given (CI sets it relative to the repo), or None."""
    value = os.environ.get("AGECAM_ASSETS")
    return Path(value).expanduser().resolve() if value else None


def detector_path(config_path: str | None = None) -> Path:
    """detector.model from the agecam config if set, else $AGECAM_ASSETS/models/<YuNet file>."""
    config = load_config(config_path)
    if config.detector.model:
        return config.resolve(config.detector.model)
    root = assets_root()
    if root is None:
        raise DetectorError("no face detector configured: set detector.model in the config or AGECAM_ASSETS")
    return root / DETECTOR_FILE


def cache_root(value: str | None = None) -> Path:
    """The crop cache folder: an explicit value, else $AGECAM_CACHE, else ~/.cache/agecam/crops."""
    chosen = value or os.environ.get("AGECAM_CACHE") or DEFAULT_CACHE
    return Path(chosen).expanduser()
