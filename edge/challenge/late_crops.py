"""Evidence crops that the disk refused for now (full, over quota, read-only for a while): held in memory and
saved again every RETRY_S, so that a flag gets its crop once the disk recovers, and its row names the crop
only once the file is whole (edge.store.pos_records.PosStore.set_evidence).

Bounded: at most MAX_HELD crops (160 px, about 75 KB each), each for at most MAX_HOLD_S and never past
`evidence.retention_days`; past the bound the oldest goes, with a warning. Only flags' crops come here, and
only with evidence enabled (edge.challenge.link). A crop saved late keeps the time of its first try as its
file time and boot-clock time, so its retention counts from the flag, not from the save. Other failures (a
symlink in the folder's place, every name taken, the encoder) are not retried.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.challenge.evidence import BOOT_CLOCK, Taken, write_crop

log = logging.getLogger(__name__)
RETRY_S = 5.0
MAX_HELD = 16  # about 1.2 MB of crops at most
MAX_HOLD_S = 3600.0  # a disk full for longer needs a person; the flag says it has no crop
FOR_NOW = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


@dataclass(frozen=True)
class FlagKey:
    """The flag row a crop belongs to: its transaction's row (the run it started in, its number) and its time."""

    run_id: int
    number: int
    t: float


@dataclass(frozen=True)
class HeldCrop:
    name: str
    crop: np.ndarray
    flag: FlagKey
    taken: Taken


class LateCrops:
    def __init__(self, state_dir: Path, retention_days: float) -> None:
        self.state_dir = state_dir
        self.max_hold_s = min(MAX_HOLD_S, retention_days * 86400)  # never keep a crop past its retention
        self.held: list[HeldCrop] = []
        self._retry_at = 0.0

    def save(self, name: str, crop: np.ndarray, flag: FlagKey) -> str | None:
        """Save a flag's crop now and return its path; or None, with the crop held for a retry when the disk
        refused it for now."""
        taken = Taken.now()
        try:
            return write_crop(self.state_dir, name, crop, taken)
        except OSError as error:
            if error.errno not in FOR_NOW:
                log.warning("evidence crop %s not saved: %s", name, error)
                return None
            log.warning(
                "evidence crop %s not saved (%s): held in memory and retried every %g s for up to %g min",
                name,
                error,
                RETRY_S,
                self.max_hold_s / 60,
            )
            self._hold(HeldCrop(name, crop, flag, taken))
            return None

    def _hold(self, held: HeldCrop) -> None:
        if not self.held:
            self._retry_at = time.monotonic() + RETRY_S
        self.held.append(held)
        if len(self.held) > MAX_HELD:
            dropped = self.held.pop(0)
            log.warning("evidence crop %s dropped from memory unsaved: %d newer ones wait", dropped.name, MAX_HELD)

    def retry(self, now: bool = False) -> list[tuple[FlagKey, str]]:
        """Try the held crops again once RETRY_S has passed (`now`: at once); returns the flags and paths saved."""
        if not self.held or (not now and time.monotonic() < self._retry_at):
            return []
        self._retry_at = time.monotonic() + RETRY_S
        saved, kept = [], []
        for held in self.held:
            if time.clock_gettime(BOOT_CLOCK) - held.taken.boot > self.max_hold_s:
                log.warning("evidence crop %s dropped unsaved: refused for %g min", held.name, self.max_hold_s / 60)
                continue
            try:
                saved.append((held.flag, write_crop(self.state_dir, held.name, held.crop, held.taken)))
            except OSError as error:
                if error.errno in FOR_NOW:
                    kept.append(held)
                else:  # the disk took it, something else did not: trying again will not help
                    log.warning("evidence crop %s not saved: %s", held.name, error)
        self.held = kept
        if saved:
            log.warning("evidence: %d crop(s) held in memory saved now that the disk takes them", len(saved))
        return saved

    def close(self) -> list[tuple[FlagKey, str]]:
        """The run's end: one last try; what the disk still refuses is lost (said), its flags without a crop."""
        saved = self.retry(now=True)
        if self.held:
            log.warning(
                "%d evidence crop(s) held in memory could not be saved before the run ended: their flags have no crop",
                len(self.held),
            )
            self.held = []
        return saved
