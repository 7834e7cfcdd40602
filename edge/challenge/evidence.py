"""Evidence crops: off by default. When enabled, only a flagged customer's face crop is written, to
STATE_DIR/evidence, and deleted after `evidence.retention_days` (`agecam purge` applies it now).

The folder is opened without following a symlink, and every file in it through that open folder: a
crop is created new (O_EXCL, mode 0600), never through a symlink and never over an existing file, and
purge deletes only regular files, leaving symlinks and folders it did not write alone. Two purges at
once (`agecam purge` and the hourly one) tolerate each other's deletions. A crop the disk refuses for now (a
full disk) is held and tried again by edge.challenge.late_crops.

A crop's age is its file time's age, except that the run's purge ages the crops its process wrote by the
boot clock, which no wall-clock step moves. A till with a dead RTC battery starts with an old wall clock
and NTP later steps it forward, which makes every crop written meanwhile look that much older: purge
would delete them long before `retention_days` (and a backward step would keep them past it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.store.eventlog import DB_NAME, EventLog
from edge.store.storage import StorageError

log = logging.getLogger(__name__)
FOLDER = "evidence"
KEEP_TRACKS = 64  # latest crops held in memory, for the tracks most recently seen
NAME_TRIES = 10  # a crop's name taken already (another event log's run 1, say): try name-2, name-3, ...
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
BOOT_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)  # counts a suspend, as retention must
STEP_WARNING_S = 3600.0  # wall and boot clock disagreeing by more than this on a crop's age: say so
_written: dict[str, float] = {}  # crop path -> boot-clock time this process wrote it
_unforgotten: dict[str, set[str]] = {}  # event log -> crops deleted whose references it has not cleared yet


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


@dataclass(frozen=True)
class Taken:
    """When a crop was first to be saved, by the wall clock (its file time) and the boot clock (retention)."""

    wall: float
    boot: float

    @classmethod
    def now(cls) -> Taken:
        return cls(time.time(), time.clock_gettime(BOOT_CLOCK))


def write_crop(state_dir: Path, name: str, crop: np.ndarray, taken: Taken | None = None) -> str:
    """Write one crop as a new JPEG file, with `taken` as its time (default now); returns its path. Raises
    OSError when it can't be written (a full disk, a symlink in the folder's place, every name taken)."""
    ok, encoded = cv2.imencode(".jpg", crop)
    if not ok:
        raise OSError(errno.EINVAL, "the image encoder failed")
    taken = taken or Taken.now()
    folder = state_dir / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _open_folder(folder) as directory:
        for attempt in range(1, NAME_TRIES + 1):
            file_name = f"{name}.jpg" if attempt == 1 else f"{name}-{attempt}.jpg"
            with contextlib.suppress(FileExistsError):
                _write_new(directory, file_name, encoded.tobytes(), taken.wall)
                _written[str(folder / file_name)] = taken.boot
                return str(folder / file_name)
        raise FileExistsError(f"{name}.jpg and {NAME_TRIES - 1} other names are taken in {folder}")


@contextlib.contextmanager
def _open_folder(folder: Path) -> Iterator[int]:
    """The evidence folder itself, never where a symlink in its place points (OSError ELOOP then)."""
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield directory
    finally:
        os.close(directory)


def _write_new(directory: int, file_name: str, data: bytes, mtime: float) -> None:
    """Create `file_name` (FileExistsError if any entry has that name, a symlink included) and write it
    whole, or remove it: a half-written crop is never left behind."""
    fd = os.open(file_name, NEW_FILE, 0o600, dir_fd=directory)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.utime(fd, (mtime, mtime))  # a crop saved late (edge.challenge.late_crops) keeps its flag's time
        os.fsync(fd)  # a flag refers to this file: it must be whole after a power loss
    except OSError:
        os.close(fd)
        os.unlink(file_name, dir_fd=directory)
        raise
    os.close(fd)


def purge(
    state_dir: Path,
    retention_days: float,
    db: Path | None = None,
    now: float | None = None,
    lock_wait_s: float | None = None,
    boot_clock: bool = False,
) -> list[Path]:
    """Delete evidence crops older than the retention, and clear their references in the event log
    (`db`, default STATE_DIR/agecam.db). A `db` that is not agecam's is refused (StateError) before any
    crop is deleted; a full, locked or read-only event log only leaves the references (logged, and retried
    at this process's next purge). `lock_wait_s`: how long to wait for another program's lock (the frame
    loop's bound), else SQLite's default here, 10 s. `boot_clock`: age the crops this process wrote by the
    boot clock (the run's purge); `agecam purge`, another process, goes by file times."""
    db = db or state_dir / DB_NAME
    exists = db.exists()
    event_log = _open_log(db) if exists else None
    try:
        retention_s = retention_days * 86400
        wall = (time.time() if now is None else now) - retention_s
        ages = Ages(wall, time.clock_gettime(BOOT_CLOCK) - retention_s, _written if boot_clock else {})
        removed = _delete_expired(state_dir / FOLDER, ages)
        if event_log is not None:
            _forget(event_log, removed, lock_wait_s)
        elif exists:  # the log refused to open: its flags still name these crops, cleared at the next purge
            _unforgotten.setdefault(str(db), set()).update(map(str, removed))
    finally:
        if event_log is not None:
            event_log.close()
    return removed


def _open_log(db: Path) -> EventLog | None:
    try:
        return EventLog(db, verify=False)
    except StorageError as error:  # the crops still go: deleting them is what frees the space
        log.warning("evidence: the event log cannot be written, references to deleted crops stay for now (%s)", error)
        return None


class Ages:
    """Which crops are past the retention: by the boot clock for those this process wrote, else by file time."""

    def __init__(self, cutoff: float, boot_cutoff: float, written: dict[str, float]) -> None:
        self.cutoff, self.boot_cutoff, self.written = cutoff, boot_cutoff, written
        self.step_s = 0.0  # the largest wall-clock step seen on a crop of this process

    def expired(self, path: str, mtime: float) -> bool:
        written = self.written.get(path)
        if written is None:
            return mtime < self.cutoff
        step = (self.cutoff - mtime) - (self.boot_cutoff - written)  # its age by the wall clock less by the boot clock
        if abs(step) > max(STEP_WARNING_S, abs(self.step_s)):
            self.step_s = step
        return written < self.boot_cutoff


def _delete_expired(folder: Path, ages: Ages) -> list[Path]:
    try:
        with _open_folder(folder) as directory:
            removed = _unlink_all(directory, folder, _expired_names(directory, folder, ages))
    except FileNotFoundError:
        return []
    except OSError as error:  # a symlink or a file in the folder's place: nothing of agecam's to delete
        log.warning("evidence folder %s not purged: %s", folder, error)
        return []
    if ages.step_s:
        log.warning(
            "evidence: the wall clock moved %+.0f s against the boot clock since crops were written; this run's"
            " crops are aged by the boot clock, older ones by their file times",
            ages.step_s,
        )
    for path in removed:
        _written.pop(str(path), None)
    return removed


def _expired_names(directory: int, folder: Path, ages: Ages) -> list[str]:
    """Regular *.jpg files older than the cutoff; symlinks, folders and the like are not agecam's."""
    names, foreign = [], 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.endswith(".jpg"):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    foreign += 1
                elif ages.expired(str(folder / entry.name), entry.stat(follow_symlinks=False).st_mtime):
                    names.append(entry.name)
            except FileNotFoundError:  # deleted meanwhile by another purge
                continue
    if foreign:
        log.warning("evidence: %d *.jpg entries that are not regular files were left alone", foreign)
    return sorted(names)


def _unlink_all(directory: int, folder: Path, names: list[str]) -> list[Path]:
    """Delete the crops; one that can't be (immutable, a mount point) must not stop the purge of the rest."""
    removed, stuck = [], []
    for name in names:
        try:
            os.unlink(name, dir_fd=directory)
        except FileNotFoundError:  # another purge was first
            continue
        except OSError as error:
            stuck.append(f"{name!r}: {error.strerror}")
            continue
        removed.append(folder / name)
    if stuck:
        log.warning("evidence: %d expired crop(s) could not be deleted, such as %s", len(stuck), stuck[0])
    return removed


def _forget(event_log: EventLog, removed: list[Path], lock_wait_s: float | None) -> None:
    """Clear the references to the deleted crops, and to those a full or locked event log kept last time."""
    paths = _unforgotten.setdefault(str(event_log.path), set())
    paths.update(map(str, removed))
    if not paths:
        return
    if lock_wait_s is not None:
        event_log.wait_for_locks(lock_wait_s)
    try:
        event_log.clear_evidence(sorted(paths))
    except StorageError as error:
        log.warning("evidence: %d crop(s) deleted, the event log keeps their paths for now (%s)", len(paths), error)
        return
    paths.clear()
