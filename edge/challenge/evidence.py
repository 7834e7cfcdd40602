"""Evidence crops: off by default. When enabled, only a flagged customer's face crop is written, to
STATE_DIR/evidence, and deleted after `evidence.retention_days` (`agecam purge` applies it now)."""

from __future__ import annotations

import argparse
import logging
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from edge.config import Config
from edge.errors import ConfigError
from edge.store.eventlog import DB_NAME, EventLog

log = logging.getLogger(__name__)
FOLDER = "evidence"
KEEP_TRACKS = 64  # latest crops held in memory, for the tracks most recently seen


class CropCache:
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
            with event_log.transaction():
                event_log.db.executemany(
                    "UPDATE alerts SET evidence = NULL WHERE evidence = ?", [(str(path),) for path in removed]
                )
        finally:
            event_log.close()
    return removed


def _purge_command(args: argparse.Namespace) -> int:
    from edge.cli.run import load

    config: Config = load(args)
    days = args.days if args.days is not None else config.evidence.retention_days
    if days < 0:
        raise ConfigError("--days must be 0 or more")
    removed = purge(config.state_dir(), days, Path(args.db) if args.db else None)
    print(f"removed {len(removed)} evidence crop(s) older than {days:g} days from {config.state_dir() / FOLDER}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser("purge", help="delete evidence crops older than evidence.retention_days now")
    command.add_argument("--days", type=float, help="override the retention (0 deletes every crop)")
    command.add_argument("--db", help="event log whose flags refer to the crops (default: STATE_DIR/agecam.db)")
    command.set_defaults(handler=_purge_command)
