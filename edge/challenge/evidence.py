"""Evidence crops: off by default. When enabled, only a flagged customer's face crop is written, to
STATE_DIR/evidence, and deleted after `evidence.retention_days` (`agecam purge` applies it now)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from edge.store.eventlog import DB_NAME, EventLog

log = logging.getLogger(__name__)
FOLDER = "evidence"
KEEP_TRACKS = 64  # latest crops held in memory, for the tracks most recently seen


class RecentCrops:
    """The latest face crop of recently seen tracks, in memory only, so a flag can keep its customer's."""

    def __init__(self) -> None:
        self.crops: OrderedDict[int, np.ndarray] = OrderedDict()

    def put(self, track_id: int, crop: np.ndarray) -> None:
        self.crops[track_id] = crop
        self.crops.move_to_end(track_id)
        while len(self.crops) > KEEP_TRACKS:
            self.crops.popitem(last=False)

    def get(self, track_id: int | None) -> np.ndarray | None:
        return None if track_id is None else self.crops.get(track_id)


def save_crop(state_dir: Path, name: str, crop: np.ndarray) -> str | None:
    """Write one crop as JPEG; returns its path, or None (logged) when it can't be written."""
    folder = state_dir / FOLDER
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{name}.jpg"
        if not cv2.imwrite(str(path), crop):
            raise OSError("the image encoder failed")
    except OSError as error:
        log.warning("evidence crop %s not saved: %s", name, error)
        return None
    return str(path)


def purge(state_dir: Path, retention_days: float, db: Path | None = None, now: float | None = None) -> list[Path]:
    """Delete evidence crops older than the retention, and clear their references in the event log
    (`db`, default STATE_DIR/agecam.db)."""
    folder = state_dir / FOLDER
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    removed = []
    for path in sorted(folder.glob("*.jpg")):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    db = db or state_dir / DB_NAME
    if removed and db.exists():
        event_log = EventLog(db)
        try:
            event_log.clear_evidence([str(path) for path in removed])
        finally:
            event_log.close()
    return removed
